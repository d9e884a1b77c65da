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
 * next publication comes GL_MONITOR_REFRESH_MS later at the soonest, so
 * the timed copy is never torn by one being written.
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
#define DEFAULT_REFRESHES 30
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
    if (!ready)
        fprintf(stderr, "gltop-bench: %s %s %zu did not say \"ready %ld\"\n",
                python, script, count, (long)pid);
    return ready ? 0 : -1;
}

static void workload_stop(workload *w)
{
    close(w->input);
    int status;
    while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
        continue;
}

/* ---------------------------------------------------------- statistics */

typedef struct phase_times {
    double *ms; /* one per refresh */
    size_t count;
} phase_times;

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

/* ------------------------------------------------------------ refreshes */

/* One measured refresh: the milliseconds of each phase. */
typedef struct refresh_times {
    double read, model, draw;
} refresh_times;

/* Keeps the selection on its greenlet when the rows move, as
 * interactive.c's follow_selection does after each sample (it is static
 * there); its cost is the model's O(n) gltop_model_find_row. */
static void follow_selection(gltop_screen *s)
{
    size_t count = gltop_model_row_count(s->model);
    size_t at = s->selected_id ? gltop_model_find_row(s->model, s->selected_id)
                               : SIZE_MAX;
    if (at != SIZE_MAX)
        s->list.selected = at;
    else if (count)
        s->list.selected = s->list.selected < count ? s->list.selected
                                                    : count - 1;
    const gltop_row *row = gltop_model_row(s->model, s->list.selected);
    s->selected_id = row ? row->greenlet->id : 0;
}

static void draw(gltop_screen *s)
{
    gltop_view_draw(s);
    wnoutrefresh(stdscr);
    doupdate();
}

/* Waits, untimed, until the process has published after now (attaching
 * makes it publish): the publication a refresh of gltop would read.
 * Returns 0, or the error of the read. */
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
    int code = wait_for_publication(s, within_ms);
    if (code)
        return code;
    int fresh;
    uint64_t start = bench_now_ns();
    code = gltop_collector_sample(&s->collector, s->model, 0, &fresh);
    if (code)
        return code;
    follow_selection(s);
    uint64_t modelled = bench_now_ns();
    draw(s);
    uint64_t drawn = bench_now_ns();
    times->read = milliseconds(last_read_ns);
    times->model = milliseconds(modelled - start - last_read_ns);
    times->draw = milliseconds(drawn - modelled);
    return 0;
}

/* Presses `keys` one by one, each followed by a draw as in the main loop;
 * returns the slowest press in ms (0 for no keys). `keys` is a string of
 * characters, except that a byte 0x01 stands for End (KEY_END). */
static double press_keys(gltop_screen *s, const char *keys)
{
    double slowest = 0;
    for (const char *k = keys; *k; k++) {
        uint64_t start = bench_now_ns();
        gltop_keys_dispatch(s, *k == '\x01' ? KEY_END : (unsigned char)*k);
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

#define KEY_END_BYTE "\x01"

/* In order: each starts from where the one before left the screen. */
static const view_path views[] = {
    /* As attached: tree by id; End selects the last row, which makes
     * following the selection scan every row. */
    {"tree, by id, last row", KEY_END_BYTE},
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
    summary read, model, draw, total;
    double slowest_key_ms;
    size_t rows;
} view_result;

/* Reaches view `path` and times `refreshes` refreshes of it; the first
 * (after the keys) is counted, as gltop's next refresh would be. Returns
 * 0 or a GL_E* error. */
static int measure_view(gltop_screen *s, const view_path *path,
                        unsigned refreshes, view_result *result,
                        double *rss_after_first)
{
    double *read = bench_allocate(4 * refreshes * sizeof *read);
    double *model = read + refreshes, *drawing = model + refreshes;
    double *total = drawing + refreshes;
    result->slowest_key_ms = press_keys(s, path->keys);
    int code = 0;
    for (unsigned i = 0; i < refreshes && !code; i++) {
        refresh_times times = {0, 0, 0};
        code = refresh_once(s, FRESH_WAIT_MS, &times);
        read[i] = times.read;
        model[i] = times.model;
        drawing[i] = times.draw;
        total[i] = times.read + times.model + times.draw;
        if (rss_after_first && i == 0)
            *rss_after_first = max_rss_mib();
    }
    if (!code) {
        result->read = summarize(read, refreshes);
        result->model = summarize(model, refreshes);
        result->draw = summarize(drawing, refreshes);
        result->total = summarize(total, refreshes);
        result->rows = gltop_model_row_count(s->model);
    }
    free(read);
    return code;
}

static void print_heading(size_t count, size_t greenlets, unsigned refreshes)
{
    printf("== gltop, one refresh with %zu greenlets (%zu in the snapshot), "
           "%dx%d screen, %u refreshes per view; ms, median and max\n",
           count, greenlets, SCREEN_LINES, SCREEN_COLUMNS, refreshes);
    printf("%-24s %8s %13s %13s %13s %15s %9s %9s\n", "view", "rows",
           "read", "model", "draw", "refresh", "/50ms", "keys max");
}

static void print_view(const view_path *path, const view_result *r)
{
    printf("%-24s %8zu %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %7.1f %7.1f "
           "%9.2f %9.1f\n",
           path->name, r->rows, r->read.median, r->read.max, r->model.median,
           r->model.max, r->draw.median, r->draw.max, r->total.median,
           r->total.max, r->total.median / BUDGET_MS, r->slowest_key_ms);
}

/* ------------------------------------------------------------- terminal */

typedef struct virtual_terminal {
    SCREEN *screen;
    FILE *output, *input;
} virtual_terminal;

/* Curses on /dev/null, SCREEN_LINES x SCREEN_COLUMNS, set up as gltop
 * sets up its own (interactive.c's start_curses). Returns 0 or -1. */
static int terminal_open(virtual_terminal *t, gltop_screen *s)
{
    t->output = fopen("/dev/null", "w");
    t->input = fopen("/dev/null", "r");
    t->screen = t->output && t->input ? newterm("xterm", t->output, t->input)
                                      : NULL;
    if (!t->screen) {
        fprintf(stderr, "gltop-bench: no curses screen for \"xterm\"\n");
        return -1;
    }
    set_term(t->screen);
    resizeterm(SCREEN_LINES, SCREEN_COLUMNS);
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    s->colour = gltop_view_start_colours();
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
    double rss_first = 0;
    view_result results[VIEW_COUNT];
    for (size_t v = 0; v < VIEW_COUNT && !code; v++)
        code = measure_view(&s, &views[v], options->refreshes, &results[v],
                            v == 0 ? &rss_first : NULL);
    double rss_last = max_rss_mib();
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
    printf("memory: max RSS %.1f MiB after the first refresh, %.1f MiB after "
           "the last (%u refreshes): %+.1f KiB per refresh\n",
           rss_first, rss_last, total_refreshes,
           (rss_last - rss_first) * 1024.0 / (total_refreshes - 1));
    return 0;
}

/* --------------------------------------------------------------- main */

static const char usage[] =
    "usage: gltop-bench [-r REFRESHES] [--python PATH] [--workload PATH] "
    "[N ...]\n"
    "Times gltop's refresh (read, model, draw) watching a process with N\n"
    "greenlets (default: 100000, then 10000), against issue 5's 50 ms.\n"
    "  -r, --refreshes R  refreshes timed per view (default 30)\n"
    "  --python PATH      the interpreter (default $PYTHON or /usr/bin/python3)\n"
    "  --workload PATH    the workload (default bench/many_greenlets.py)\n"
    "Run from the repository root; PYTHONPATH defaults to \"python\".\n";

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
    for (int i = optind; i < argc && count_total < MAX_COUNTS; i++) {
        long count = atol(argv[i]);
        if (count < 1) {
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
