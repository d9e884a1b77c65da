/*
 * screen.h -- the interactive gltop: the one state struct that everything
 * on the screen lives in, and the three parts that use it: keys (a
 * dispatch table whose handlers change the state and say what to do
 * next), views (panels that draw the state and the model, nothing else)
 * and the main loop (scan, rebuild, draw, wait for a key or the next
 * scan), which owns the terminal.
 *
 * Screens: the picker (processes that publish a segment), the list (the
 * greenlets of the watched process), the detail pane (one greenlet), and
 * help over any of them.
 */
#ifndef GLTOP_SCREEN_H
#define GLTOP_SCREEN_H

#include <stdint.h>

#include "collector.h"
#include "cursor.h"
#include "detail.h"
#include "model.h"
#include "processes.h"

typedef enum gltop_mode {
    GLTOP_MODE_PICKER = 0,
    GLTOP_MODE_LIST,
    GLTOP_MODE_DETAIL,
    GLTOP_MODE_HELP,
    GLTOP_MODES
} gltop_mode;

/* What a key handler asks the main loop to do next. */
typedef enum gltop_action {
    GLTOP_ACTION_NONE = 0, /* nothing changed */
    GLTOP_ACTION_REDRAW,
    GLTOP_ACTION_RESCAN,   /* sample (or look for processes) now */
    GLTOP_ACTION_QUIT
} gltop_action;

typedef struct gltop_screen {
    /* From the command line. */
    double delay_seconds;
    uint64_t block_threshold_ns;

    gltop_mode mode;
    gltop_mode mode_under_help;
    int paused;
    int editing_filter;       /* after '/': keys edit `filter` */
    char filter[128];
    char message[256];        /* shown on the last line until a key */
    int colour;               /* the terminal has colours */

    /* The picker. */
    gltop_process *processes;
    size_t process_count;
    gltop_cursor picker;

    /* The watched process. */
    int attached;
    gltop_collector collector;
    gltop_model *model;
    gltop_cursor list;
    uint64_t selected_id;     /* the selection follows its greenlet */
    int stale;                /* the last sample found nothing new */
    uint64_t last_fresh_ns;   /* CLOCK_MONOTONIC of the last new sample */

    /* The detail pane: its greenlet, and the answer to the last request
     * for its stacks. */
    uint64_t detail_id;
    gltop_detail_stacks stacks;
    gltop_cursor detail;      /* only `top` is used: the pane scrolls */
    gltop_cursor help;
} gltop_screen;

/* keys.c: handles one key (a curses key code) and says what next. */
gltop_action gltop_keys_dispatch(gltop_screen *screen, int key);
/* Line `index` of the help for `mode`, "KEYS\tWHAT", from the entries of
 * the dispatch table that apply there; NULL past the last. */
const char *gltop_keys_help(gltop_mode mode, size_t index);

/* view_*.c: draw the current mode's screen into stdscr (no refresh). The
 * views fit the cursors to the lines they show. */
void gltop_view_draw(gltop_screen *screen);
/* How many lines of the current mode's list fit on the screen, for the
 * page keys. */
size_t gltop_view_page_lines(const gltop_screen *screen);

/* interactive.c: the main loop, the transitions it makes (attach to a
 * process, leave it, open the detail pane), and how it is run. */
int gltop_screen_attach(gltop_screen *screen, int64_t pid);
void gltop_screen_detach(gltop_screen *screen);
void gltop_screen_open_detail(gltop_screen *screen);
/* After a sample: keeps the selection on the same greenlet when the rows
 * have moved (O(rows)). */
void gltop_screen_follow_selection(gltop_screen *screen);
/* Runs the screen until q; `pid` > 0 starts attached to it. Returns 0,
 * or the error (GL_E*) of attaching to `pid`, said on stderr before the
 * screen was opened. */
int gltop_screen_run(int64_t pid, double delay_seconds,
                     uint64_t block_threshold_ns);

#endif /* GLTOP_SCREEN_H */
