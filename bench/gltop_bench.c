/*
 * gltop_bench.c -- gltop at scale (issue 5: "smooth with 100,000 greenlets
 * in one process: one refresh under 50 ms with memory bounded"). It starts
 * bench/many_greenlets.py with N greenlets, watches it with gltop's own
 * code (collector, model, views; everything of gltop/ but main.c is linked
 * in) on a virtual terminal, and reports how long each part of a refresh
 * takes and how much memory gltop holds. `make bench` runs it; timing is
 * information, never a test: the exit status is 0 whatever the numbers
 * are, and not 0 only when it could not measure.
 *
 * One refresh is what gltop's main loop does each interval (interactive.c)
 * in three phases:
 *
 *   read   gl_monitor_read: copying the segment and parsing it
 *   model  the rest of gltop_collector_sample (the threads' CPU times and
 *          gltop_model_update, which rebuilds the rows), then following
 *          the selection to its greenlet's new row
 *   draw   gltop_view_draw, then doupdate() (what refresh() does)
 *
 * The read is timed inside gltop_collector_sample by wrapping
 * gl_monitor_read at link time (-Wl,--wrap=gl_monitor_read): collector.c's
 * call lands in __wrap_gl_monitor_read below, which times the real one.
 * The wait for a fresh publication is not gltop's cost but the watched
 * process's (it builds the publication when a reader attaches), so before
 * each refresh the bench waits for one untimed, as gltop would, and the
 * timed sample then reads it without waiting (fresh_within_ms 0). The
 * process publishes at most once per 50 ms, and per ten times as long as
 * its last publication took (src/monitor.c), and the timed read ends a
 * few ms after the publication it reads: no publication is being written
 * meanwhile to tear the copy and make it retry.
 *
 * Views are reached by the keys a user presses (gltop_keys_dispatch), each
 * key followed by a draw, as the main loop does; the keys are timed too,
 * since sort and filter keys rebuild the rows. Each N runs in a child
 * process of its own, so that its max RSS (getrusage) is its own; memory
 * is reported after the first refresh and after the last, to show that it
 * does not grow with the refreshes.
 *
 * The terminal is virtual: newterm() on /dev/null, resized to a fixed
 * SCREEN_LINES x SCREEN_COLUMNS, so the bench runs the same without a
 * terminal (CI) and never draws on the user's. Curses still computes and
 * writes every change, to /dev/null.
 *
 * Usage: gltop-bench [-r REFRESHES] [--python PATH] [--workload PATH]
 *                    [N ...]     (default: 100000 10000)
 * Run from the repository root: PYTHONPATH defaults to "python".
 */
#define _GNU_SOURCE
#include "bench_clock.h"
#include "screen.h"
#include "view.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUDGET_MS 50.0          /* issue 5: one refresh under 50 ms */
#define SCREEN_LINES 50
#define SCREEN_COLUMNS 200
#define READY_WAIT_MS 10000     /* for the first publication of a big tree */
#define FRESH_WAIT_MS 5000      /* for each later one */
/* Each refresh first waits for the process to publish, which it does at
 * most once per ten times its last publication took (src/monitor.c):
 * some 0.4 s at 100,000 greenlets. 15 refreshes of 5 views keep a run of
 * both default sizes under a minute. */
#define DEFAULT_REFRESHES 15
#define MAX_COUNTS 8

/* ------------------------------------------------ the read, timed inside */

/* The library's gl_monitor_read, under the name the linker gives it when
 * --wrap=gl_monitor_read is in effect. */
int __real_gl_monitor_read(gl_monitor_reader *reader, int fresh_within_ms,
                           int *freshness, gl_monitor_snapshot **out);
int __wrap_gl_monitor_read(gl_monitor_reader *reader, int fresh_within_ms,
                           int *freshness, gl_monitor_snapshot **out);

/* How long the last gl_monitor_read that gltop's code made took. */
static uint64_t last_read_ns;

int __wrap_gl_monitor_read(gl_monitor_reader *reader, int fresh_within_ms,
                           int *freshness, gl_monitor_snapshot **out)
{
    uint64_t start = bench_now_ns();
    int code = __real_gl_monitor_read(reader, fresh_within_ms, freshness, out);
    last_read_ns = bench_now_ns() - start;
    return code;
}

/* ------------------------------------------------------------ workload */

typedef struct workload {
    pid_t pid;
    int input; /* its stdin: closing it ends the workload */
} workload;

/* Closes its stdin, and waits for it to end. */
static void workload_stop(workload *w)
{
    close(w->input);
    int status;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        continue;
}

/* Starts `script` with `count` greenlets and waits for its "ready PID"
 * line. Returns 0, or -1 having said why on stderr. */
static int workload_start(workload *w, const char *python, const char *script,
                          size_t count)
{
    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(from_child, O_CLOEXEC) < 0) {
        perror("gltop-bench: pipe");
        return -1;
    }
    char argument[32];
    snprintf(argument, sizeof argument, "%zu", count);
    pid_t pid = fork();
    if (pid < 0) {
        perror("gltop-bench: fork");
        return -1;
    }
    if (pid == 0) {
        dup2(to_child[0], STDIN_FILENO);
        dup2(from_child[1], STDOUT_FILENO);
        execl(python, python, script, argument, (char *)NULL);
        fprintf(stderr, "gltop-bench: %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    *w = (workload){.pid = pid, .input = to_child[1]};
    FILE *output = fdopen(from_child[0], "r");
    char line[128];
    long ready_pid = 0;
    int ready = output && fgets(line, sizeof line, output) &&
                sscanf(line, "ready %ld", &ready_pid) == 1 &&
                ready_pid == (long)pid;
    if (output)
        fclose(output);
    else
        close(from_child[0]);
    if (ready)
        return 0;
    fprintf(stderr, "gltop-bench: %s %s %zu did not say \"ready %ld\"\n",
            python, script, count, (long)pid);
    workload_stop(w);
    return -1;
}

/* ---------------------------------------------------------- statistics */

typedef struct summary {
    double median, max;
} summary;

/* Median and maximum of the first `count` values (sorts them). */
static summary summarize(double *values, size_t count)
{
    summary s = {0, 0};
    if (!count)
        return s;
    qsort(values, count, sizeof *values, bench_compare_doubles);
    s.median = count % 2 ? values[count / 2]
                         : (values[count / 2 - 1] + values[count / 2]) / 2;
    s.max = values[count - 1];
    return s;
}

static double milliseconds(uint64_t ns)
{
    return (double)ns / 1e6;
}

/* The largest resident set this process has had, in MiB. */
static double max_rss_mib(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_maxrss / 1024.0; /* ru_maxrss is in KiB */
}

/* The resident set now, in MiB (0 if /proc cannot say): unlike the
 * maximum, it would show memory that a refresh keeps and a later one
 * does not reach again. */
static double resident_mib(void)
{
    FILE *statm = fopen("/proc/self/statm", "r");
    unsigned long pages_total = 0, pages_resident = 0;
    if (statm) {
        if (fscanf(statm, "%lu %lu", &pages_total, &pages_resident) != 2)
            pages_resident = 0;
        fclose(statm);
    }
    return (double)pages_resident * (double)sysconf(_SC_PAGESIZE) /
           (1024.0 * 1024.0);
}

/* Memory after a refresh. */
typedef struct memory_mark {
    double max_rss_mib, resident_mib;
} memory_mark;

static memory_mark memory_now(void)
{
    return (memory_mark){max_rss_mib(), resident_mib()};
}

/* ------------------------------------------------------------ refreshes */

/* One measured refresh: the milliseconds of each phase, and of the
 * untimed wait for the publication before it. */
typedef struct refresh_times {
    double read, model, draw;
    double wait;
} refresh_times;

static void draw(gltop_screen *s)
{
    gltop_view_draw(s);
    wnoutrefresh(stdscr);
    doupdate();
}

/* Waits, untimed, until the process has published after now (attaching
 * makes it publish): the publication a refresh of gltop would read.
 * Returns 0, the error of the read, or GL_ETIMEDOUT when no publication
 * came within `within_ms`. */
static int wait_for_publication(gltop_screen *s, int within_ms)
{
    gl_monitor_snapshot *snapshot;
    int freshness;
    int code = __real_gl_monitor_read(s->collector.reader, within_ms,
                                      &freshness, &snapshot);
    if (code)
        return code;
    gl_monitor_snapshot_free(snapshot);
    return freshness;
}

/* One refresh, timed by phase. Returns 0 or a GL_E* error. */
static int refresh_once(gltop_screen *s, int within_ms, refresh_times *times)
{
    uint64_t waited = bench_now_ns();
    int code = wait_for_publication(s, within_ms);
    if (code)
        return code;
    uint64_t start = bench_now_ns();
    times->wait = milliseconds(start - waited);
    code = gltop_collector_sample(&s->collector, s->model, 0, NULL);
    if (code)
        return code;
    gltop_screen_follow_selection(s);
    uint64_t modelled = bench_now_ns();
    draw(s);
    uint64_t drawn = bench_now_ns();
    times->read = milliseconds(last_read_ns);
    times->model = milliseconds(modelled - start - last_read_ns);
    times->draw = milliseconds(drawn - modelled);
    return 0;
}

/* In a string of keys, the byte that stands for End (KEY_END). */
#define END_KEY "\x01"

/* Presses `keys` one by one, each followed by a draw as in the main loop;
 * returns the slowest press in ms (0 for no keys). `keys` is a string of
 * characters, END_KEY among them. */
static double press_keys(gltop_screen *s, const char *keys)
{
    double slowest = 0;
    for (const char *k = keys; *k; k++) {
        uint64_t start = bench_now_ns();
        gltop_keys_dispatch(s, *k == END_KEY[0] ? KEY_END : (unsigned char)*k);
        draw(s);
        double ms = milliseconds(bench_now_ns() - start);
        if (ms > slowest)
            slowest = ms;
    }
    return slowest;
}

/* ---------------------------------------------------------------- views */

/* A view a user reaches from the previous one by pressing `keys`. */
typedef struct view_path {
    const char *name;
    const char *keys;
} view_path;

/* In order: each starts from where the one before left the screen. */
static const view_path views[] = {
    /* As attached: tree by id; End selects the last row, which makes
     * following the selection scan every row. */
    {"tree, by id, last row", END_KEY},
    /* s steps the sort column: id, state, thread, heap (largest first). */
    {"tree, by heap", "sss"},
    {"flat, by heap", "t"},
    /* Four more steps: peak, rate, idle, where (function, file, line):
     * the one sort by strings. */
    {"flat, by where", "ssss"},
    /* Back to the tree, filtered by a function a quarter of the
     * greenlets are in (the filter rebuilds at every letter typed). */
    {"tree, by where, filter", "t/backoff\n"},
};
#define VIEW_COUNT (sizeof views / sizeof *views)

typedef struct view_result {
    summary read, model, draw, total, wait;
    double slowest_key_ms;
    size_t rows;
} view_result;

/* Reaches view `path` and times `refreshes` refreshes of it; the first
 * (after the keys) is counted, as gltop's next refresh would be. Returns
 * 0 or a GL_E* error. */
static int measure_view(gltop_screen *s, const view_path *path,
                        unsigned refreshes, view_result *result,
                        memory_mark *after_first)
{
    double *read = malloc(5 * refreshes * sizeof *read);
    if (!read)
        return GL_ENOMEM;
    double *model = read + refreshes, *drawing = model + refreshes;
    double *total = drawing + refreshes, *wait = total + refreshes;
    result->slowest_key_ms = press_keys(s, path->keys);
    int code = 0;
    for (unsigned i = 0; i < refreshes && !code; i++) {
        refresh_times times = {0, 0, 0, 0};
        code = refresh_once(s, FRESH_WAIT_MS, &times);
        read[i] = times.read;
        model[i] = times.model;
        drawing[i] = times.draw;
        total[i] = times.read + times.model + times.draw;
        wait[i] = times.wait;
        if (after_first && i == 0)
            *after_first = memory_now();
    }
    if (!code) {
        result->read = summarize(read, refreshes);
        result->model = summarize(model, refreshes);
        result->draw = summarize(drawing, refreshes);
        result->total = summarize(total, refreshes);
        result->wait = summarize(wait, refreshes);
        result->rows = gltop_model_row_count(s->model);
    }
    free(read);
    return code;
}

static void print_heading(size_t count, size_t greenlets, unsigned refreshes)
{
    printf("== gltop with %zu greenlets (%zu in the snapshot), %dx%d screen, "
           "%u refreshes per view; ms\n",
           count, greenlets, SCREEN_LINES, SCREEN_COLUMNS, refreshes);
    printf("%-24s %7s  %-13s  %-13s  %-13s  %-13s  %-11s  %s\n", "", "",
           "read", "model", "draw", "refresh", "/ 50 ms", "slowest");
    printf("%-24s %7s  %6s %6s  %6s %6s  %6s %6s  %6s %6s  %5s %5s  %s\n",
           "view", "rows", "median", "max", "median", "max", "median", "max",
           "median", "max", "med", "max", "key");
}

static void print_view(const view_path *path, const view_result *r)
{
    printf("%-24s %7zu  %6.1f %6.1f  %6.1f %6.1f  %6.1f %6.1f  %6.1f %6.1f  "
           "%5.2f %5.2f  %.1f\n",
           path->name, r->rows, r->read.median, r->read.max, r->model.median,
           r->model.max, r->draw.median, r->draw.max, r->total.median,
           r->total.max, r->total.median / BUDGET_MS, r->total.max / BUDGET_MS,
           r->slowest_key_ms);
}

/* ------------------------------------------------------------- terminal */

typedef struct virtual_terminal {
    SCREEN *screen;
    FILE *output, *input;
} virtual_terminal;

/* Curses on /dev/null, SCREEN_LINES x SCREEN_COLUMNS, set up as gltop
 * sets up its own. Returns 0 or -1. */
static int terminal_open(virtual_terminal *t, gltop_screen *s)
{
    t->output = fopen("/dev/null", "w");
    t->input = fopen("/dev/null", "r");
    t->screen = t->output && t->input ? newterm("xterm", t->output, t->input)
                                      : NULL;
    if (!t->screen) {
        fprintf(stderr, "gltop-bench: no curses screen for \"xterm\"\n");
        if (t->output)
            fclose(t->output);
        if (t->input)
            fclose(t->input);
        return -1;
    }
    set_term(t->screen);
    resizeterm(SCREEN_LINES, SCREEN_COLUMNS);
    gltop_view_set_up_terminal(s);
    return 0;
}

static void terminal_close(virtual_terminal *t)
{
    endwin();
    delscreen(t->screen);
    fclose(t->output);
    fclose(t->input);
}

/* --------------------------------------------------------------- one N */

typedef struct settings {
    const char *python;
    const char *workload;
    unsigned refreshes;
} settings;

/* Measures every view with `count` greenlets. Returns the exit status. */
static int measure_count(const settings *options, size_t count)
{
    workload w;
    if (workload_start(&w, options->python, options->workload, count) != 0)
        return 1;
    gltop_screen s = {.delay_seconds = 1,
                      .block_threshold_ns = GLTOP_BLOCK_THRESHOLD_NS};
    virtual_terminal terminal;
    int code = gltop_screen_attach(&s, w.pid);
    if (code) {
        fprintf(stderr, "gltop-bench: %s\n", s.message);
        workload_stop(&w);
        return 1;
    }
    if (terminal_open(&terminal, &s) != 0) {
        gltop_screen_detach(&s);
        workload_stop(&w);
        return 1;
    }
    /* The first sample of a big tree, and the first draw, as gltop's
     * first scan; not timed. */
    if ((code = wait_for_publication(&s, READY_WAIT_MS)) == 0 &&
        (code = gltop_collector_sample(&s.collector, s.model, 0, NULL)) == 0)
        draw(&s);
    memory_mark first = {0, 0};
    view_result results[VIEW_COUNT];
    for (size_t v = 0; v < VIEW_COUNT && !code; v++)
        code = measure_view(&s, &views[v], options->refreshes, &results[v],
                            v == 0 ? &first : NULL);
    memory_mark last = memory_now();
    const gl_monitor_snapshot *snapshot = gltop_model_snapshot(s.model);
    size_t greenlets = snapshot ? snapshot->greenlet_count : 0;
    terminal_close(&terminal);
    gltop_screen_detach(&s);
    workload_stop(&w);
    if (code) {
        fprintf(stderr, "gltop-bench: reading pid %ld: %s\n", (long)w.pid,
                gl_strerror(code));
        return 1;
    }
    print_heading(count, greenlets, options->refreshes);
    for (size_t v = 0; v < VIEW_COUNT; v++)
        print_view(&views[v], &results[v]);
    unsigned total_refreshes = (unsigned)VIEW_COUNT * options->refreshes;
    printf("memory after the first refresh and after the last (%u "
           "refreshes): max RSS %.1f and %.1f MiB (%+.1f KiB per refresh), "
           "resident %.1f and %.1f MiB\n",
           total_refreshes, first.max_rss_mib, last.max_rss_mib,
           (last.max_rss_mib - first.max_rss_mib) * 1024.0 /
               (total_refreshes - 1),
           first.resident_mib, last.resident_mib);
    printf("untimed: each wait for a fresh publication took %.0f ms (median, "
           "first view): the process's rate limit (src/monitor.c), not "
           "gltop's cost\n",
           results[0].wait.median);
    return 0;
}

/* --------------------------------------------------------------- main */

static const char usage[] =
    "usage: gltop-bench [-r REFRESHES] [--python PATH] [--workload PATH] "
    "[N ...]\n"
    "Times gltop's refresh (read, model, draw) watching a process with N\n"
    "greenlets (default: 100000, then 10000), against issue 5's 50 ms.\n"
    "  -r, --refreshes R  refreshes timed per view (default 15)\n"
    "  --python PATH      the interpreter (default $PYTHON or /usr/bin/python3)\n"
    "  --workload PATH    the workload (default bench/many_greenlets.py)\n"
    "At most 8 values of N. Run from the repository root; PYTHONPATH\n"
    "defaults to \"python\".\n";

/* Runs measure_count in a child, so that each N has its own max RSS. */
static int measure_in_child(const settings *options, size_t count)
{
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("gltop-bench: fork");
        return 1;
    }
    if (child == 0) {
        int status = measure_count(options, count);
        fflush(stdout);
        _exit(status);
    }
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        continue;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

int main(int argc, char **argv)
{
    const char *python = getenv("PYTHON");
    settings options = {python && *python ? python : "/usr/bin/python3",
                        "bench/many_greenlets.py", DEFAULT_REFRESHES};
    static const struct option long_options[] = {
        {"refreshes", required_argument, NULL, 'r'},
        {"python", required_argument, NULL, 'P'},
        {"workload", required_argument, NULL, 'W'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int option;
    while ((option = getopt_long(argc, argv, "r:h", long_options, NULL)) !=
           -1) {
        if (option == 'r' && atoi(optarg) > 0)
            options.refreshes = (unsigned)atoi(optarg);
        else if (option == 'P')
            options.python = optarg;
        else if (option == 'W')
            options.workload = optarg;
        else {
            fputs(usage, option == 'h' ? stdout : stderr);
            return option == 'h' ? 0 : 2;
        }
    }
    size_t counts[MAX_COUNTS] = {100000, 10000};
    size_t count_total = 2;
    if (optind < argc)
        count_total = 0;
    for (int i = optind; i < argc; i++) {
        long count = atol(argv[i]);
        if (count < 1 || count_total == MAX_COUNTS) {
            fputs(usage, stderr);
            return 2;
        }
        counts[count_total++] = (size_t)count;
    }
    setlocale(LC_ALL, "");
    setenv("PYTHONPATH", "python", 0);
    /* A workload that dies leaves our pipe without a reader. */
    signal(SIGPIPE, SIG_IGN);
    int status = 0;
    for (size_t i = 0; i < count_total; i++)
        status |= measure_in_child(&options, counts[i]);
    return status;
}
