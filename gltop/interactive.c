/*
 * interactive.c -- gltop's screen: the main loop (scan, rebuild, draw,
 * then wait for a key until the next scan) and the transitions between
 * screens that need the collector: watching a process, leaving it (by
 * choice, or because it exited), and asking for a greenlet's stacks.
 *
 * A scan reads the watched process (or, on the picker, looks for
 * processes) once per refresh interval; it waits for a fresh publication
 * at most half a second so that keys stay responsive even when the
 * process cannot publish (then the header says how long it has been).
 */
#define _GNU_SOURCE
#include "screen.h"
#include "view.h"

#include <inttypes.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SAMPLE_WAIT_MS 500
#define PICKER_WAIT_MS 300
#define STACKS_WAIT_MS 2000

int gltop_screen_attach(gltop_screen *s, int64_t pid)
{
    gltop_model *model;
    int error = gltop_model_create(&model);
    if (!error && (error = gltop_collector_open(&s->collector, pid)) != 0)
        gltop_model_destroy(model);
    if (error) {
        snprintf(s->message, sizeof s->message, "pid %" PRId64 ": %s", pid,
                 gl_strerror(error));
        return error;
    }
    gltop_model_set_block_threshold(model, s->block_threshold_ns);
    s->model = model;
    s->attached = 1;
    s->mode = GLTOP_MODE_LIST;
    s->list = (gltop_cursor){0};
    s->selected_id = 0;
    s->stale = 0;
    s->last_fresh_ns = gltop_monotonic_ns();
    s->filter[0] = '\0';
    s->editing_filter = 0;
    return 0;
}

void gltop_screen_detach(gltop_screen *s)
{
    if (s->attached) {
        gltop_collector_close(&s->collector);
        gltop_model_destroy(s->model);
        s->model = NULL;
        s->attached = 0;
    }
    gltop_detail_stacks_clear(&s->stacks);
    s->editing_filter = 0;
    s->mode = GLTOP_MODE_PICKER;
}

void gltop_screen_open_detail(gltop_screen *s)
{
    if (s->mode == GLTOP_MODE_LIST) {
        const gltop_row *row = gltop_model_row(s->model, s->list.selected);
        if (!row)
            return;
        s->detail_id = row->greenlet->id;
        s->detail = (gltop_cursor){0};
        s->mode = GLTOP_MODE_DETAIL;
    }
    /* The request can take a while: show the pane, saying so. */
    snprintf(s->message, sizeof s->message,
             "asking pid %" PRId64 " for the stacks of greenlet #%" PRIu64
             "...", s->collector.pid, s->detail_id);
    gltop_view_draw(s);
    refresh();
    s->message[0] = '\0';
    gltop_detail_stacks_clear(&s->stacks);
    s->stacks.id = s->detail_id;
    s->stacks.asked_at = time(NULL);
    s->stacks.error = gltop_collector_stacks(&s->collector, s->detail_id,
                                             STACKS_WAIT_MS, &s->stacks.text,
                                             &s->stacks.status);
    /* Flagged H: which words point into it, from a fresh audit. */
    gltop_row row;
    int status;
    if (gltop_model_greenlet(s->model, s->detail_id, &row) &&
        (row.flags & GLTOP_FLAG_HAZARD) &&
        gltop_collector_audit(&s->collector, STACKS_WAIT_MS, &s->stacks.audit,
                              &status) != 0)
        s->stacks.audit = NULL;
}

void gltop_screen_follow_selection(gltop_screen *s)
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

static void sample(gltop_screen *s)
{
    int fresh = 0;
    int error = gltop_collector_sample(&s->collector, s->model,
                                       SAMPLE_WAIT_MS, &fresh);
    const char *ended = gltop_collector_ended(error);
    if (ended) {
        int64_t pid = s->collector.pid;
        gltop_screen_detach(s);
        snprintf(s->message, sizeof s->message, "pid %" PRId64 " %s", pid,
                 ended);
        return;
    }
    if (error == GL_ETIMEDOUT && !gltop_model_snapshot(s->model)) {
        snprintf(s->message, sizeof s->message,
                 "pid %" PRId64 " has not published yet: it may be busy in "
                 "a long call that holds its GIL", s->collector.pid);
        return;
    }
    if (error) {
        snprintf(s->message, sizeof s->message,
                 "pid %" PRId64 ": %s (showing what was read before)",
                 s->collector.pid, gl_strerror(error));
        return;
    }
    s->stale = !fresh;
    if (fresh)
        s->last_fresh_ns = gltop_monotonic_ns();
    gltop_screen_follow_selection(s);
}

static void scan(gltop_screen *s)
{
    if (s->attached) {
        sample(s);
        if (s->attached)
            return;
    }
    gltop_process *processes;
    size_t count;
    if (gltop_scan_processes(&processes, &count, PICKER_WAIT_MS) != 0)
        return;
    int64_t selected = s->picker.selected < s->process_count
                           ? s->processes[s->picker.selected].pid
                           : 0;
    free(s->processes);
    s->processes = processes;
    s->process_count = count;
    for (size_t i = 0; i < count; i++)
        if (processes[i].pid == selected)
            s->picker.selected = i;
}

/* Set by SIGINT, SIGTERM and SIGHUP: the loop then restores the terminal
 * and quits, instead of leaving it in curses' modes. The one piece of
 * state outside the screen struct, as a signal handler needs. */
static volatile sig_atomic_t stop_requested;

static void request_stop(int signal_number)
{
    (void)signal_number;
    stop_requested = 1;
}

static void catch_stop_signals(void)
{
    struct sigaction action = {.sa_handler = request_stop};
    sigemptyset(&action.sa_mask);
    /* No SA_RESTART: a wait for a key returns at once. */
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
}

static void start_curses(gltop_screen *s)
{
    setlocale(LC_ALL, "");
    set_escdelay(25); /* Esc alone is a key here */
    initscr();
    gltop_view_set_up_terminal(s);
}

int gltop_screen_run(int64_t pid, double delay_seconds,
                     uint64_t block_threshold_ns)
{
    gltop_screen s = {.delay_seconds = delay_seconds,
                      .block_threshold_ns = block_threshold_ns};
    if (pid > 0) {
        int error = gltop_screen_attach(&s, pid);
        if (error) {
            fprintf(stderr, "gltop: %s\n", s.message);
            return error;
        }
    }
    catch_stop_signals();
    start_curses(&s);
    uint64_t interval = (uint64_t)(delay_seconds * 1e9);
    uint64_t next_scan = 0;
    int scan_now = 1; /* asked for: even while paused */
    while (!stop_requested) {
        uint64_t now = gltop_monotonic_ns();
        if (scan_now || (!s.paused && now >= next_scan)) {
            scan(&s);
            now = gltop_monotonic_ns();
            next_scan = now + interval;
            scan_now = 0;
        }
        gltop_view_draw(&s);
        refresh();
        long wait_ms = s.paused ? -1 : (long)((next_scan - now) / 1000000u);
        timeout((int)wait_ms);
        int key = getch();
        if (key == ERR || stop_requested)
            continue;
        gltop_action action = gltop_keys_dispatch(&s, key);
        if (action == GLTOP_ACTION_QUIT)
            break;
        if (action == GLTOP_ACTION_RESCAN)
            scan_now = 1;
    }
    endwin();
    gltop_screen_detach(&s);
    free(s.processes);
    return 0;
}
