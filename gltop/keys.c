/*
 * keys.c -- gltop's keys: one table says which keys do what on which
 * screen, the help screen is printed from it, and each handler changes the
 * state and returns what the main loop should do next. While the filter
 * is being typed ('/'), keys edit it instead, and the list follows each
 * keystroke.
 */
#define _GNU_SOURCE
#include "screen.h"

#include <curses.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#define ESCAPE 27
#define CONTROL(letter) ((letter)&0x1f)

#define ON_PICKER (1u << GLTOP_MODE_PICKER)
#define ON_LIST (1u << GLTOP_MODE_LIST)
#define ON_DETAIL (1u << GLTOP_MODE_DETAIL)
#define ON_HELP (1u << GLTOP_MODE_HELP)
#define EVERYWHERE (ON_PICKER | ON_LIST | ON_DETAIL | ON_HELP)

/* ------------------------------------------------------------ moving */

/* The cursor and line count of the current screen's list. */
static gltop_cursor *current_cursor(gltop_screen *s, size_t *count)
{
    switch (s->mode) {
    case GLTOP_MODE_PICKER:
        *count = s->process_count;
        return &s->picker;
    case GLTOP_MODE_LIST:
        *count = s->model ? gltop_model_row_count(s->model) : 0;
        return &s->list;
    case GLTOP_MODE_DETAIL:
        *count = SIZE_MAX; /* the view clamps what it scrolled past */
        return &s->detail;
    default:
        *count = SIZE_MAX;
        return &s->help;
    }
}

/* The detail pane and help scroll (their top line moves); the lists
 * move their selection, and the view scrolls to keep it in sight. */
static gltop_action move_by(gltop_screen *s, long delta)
{
    size_t count;
    gltop_cursor *cursor = current_cursor(s, &count);
    if (s->mode == GLTOP_MODE_DETAIL || s->mode == GLTOP_MODE_HELP) {
        cursor->selected = cursor->top;
        gltop_cursor_move(cursor, delta, count);
        cursor->top = cursor->selected;
    } else {
        gltop_cursor_move(cursor, delta, count);
    }
    if (s->mode == GLTOP_MODE_LIST && s->model && count)
        s->selected_id =
            gltop_model_row(s->model, s->list.selected)->greenlet->id;
    return GLTOP_ACTION_REDRAW;
}

static long page(const gltop_screen *s)
{
    size_t lines = gltop_view_page_lines(s);
    return lines > 1 ? (long)lines - 1 : 1;
}

static gltop_action up(gltop_screen *s) { return move_by(s, -1); }
static gltop_action down(gltop_screen *s) { return move_by(s, 1); }
static gltop_action page_up(gltop_screen *s) { return move_by(s, -page(s)); }
static gltop_action page_down(gltop_screen *s) { return move_by(s, page(s)); }
/* As far as it goes: gltop_cursor_move stops at the first or last line
 * (the panes' views clamp their top line). */
static gltop_action home(gltop_screen *s) { return move_by(s, -LONG_MAX); }
static gltop_action end(gltop_screen *s) { return move_by(s, LONG_MAX); }

/* ------------------------------------------------------------ screens */

static gltop_action quit(gltop_screen *s)
{
    (void)s;
    return GLTOP_ACTION_QUIT;
}

static gltop_action help(gltop_screen *s)
{
    s->mode_under_help = s->mode;
    s->mode = GLTOP_MODE_HELP;
    s->help = (gltop_cursor){0};
    return GLTOP_ACTION_REDRAW;
}

static gltop_action close_pane(gltop_screen *s)
{
    s->mode = s->mode == GLTOP_MODE_HELP ? s->mode_under_help
                                         : GLTOP_MODE_LIST;
    return GLTOP_ACTION_REDRAW;
}

static gltop_action to_picker(gltop_screen *s)
{
    gltop_screen_detach(s);
    return GLTOP_ACTION_RESCAN;
}

static gltop_action watch_selected(gltop_screen *s)
{
    if (s->picker.selected >= s->process_count)
        return GLTOP_ACTION_NONE;
    int64_t pid = s->processes[s->picker.selected].pid;
    return gltop_screen_attach(s, pid) == 0 ? GLTOP_ACTION_RESCAN
                                            : GLTOP_ACTION_REDRAW;
}

static gltop_action open_detail(gltop_screen *s)
{
    if (!s->model || gltop_model_row_count(s->model) == 0)
        return GLTOP_ACTION_NONE;
    gltop_screen_open_detail(s);
    return GLTOP_ACTION_REDRAW;
}

static gltop_action ask_again(gltop_screen *s)
{
    gltop_screen_open_detail(s);
    return GLTOP_ACTION_REDRAW;
}

static gltop_action rescan(gltop_screen *s)
{
    (void)s;
    return GLTOP_ACTION_RESCAN;
}

static gltop_action pause_or_go_on(gltop_screen *s)
{
    s->paused = !s->paused;
    return s->paused ? GLTOP_ACTION_REDRAW : GLTOP_ACTION_RESCAN;
}

/* ------------------------------------------------------------ the list */

/* What a change of view says when the rows could not be rebuilt. */
static gltop_action rebuilt(gltop_screen *s, int error)
{
    gltop_screen_follow_selection(s); /* the rows have moved */
    if (error)
        snprintf(s->message, sizeof s->message, "%s: the list may be "
                 "incomplete until the next refresh", gl_strerror(error));
    return GLTOP_ACTION_REDRAW;
}

static gltop_action toggle_tree(gltop_screen *s)
{
    return rebuilt(s, gltop_model_set_tree(s->model,
                                           !gltop_model_tree(s->model)));
}

static gltop_action sort_by(gltop_screen *s, int step)
{
    int descending;
    gltop_column column = gltop_model_sort(s->model, &descending);
    column = (gltop_column)(((int)column + step + GLTOP_COLUMNS) %
                            GLTOP_COLUMNS);
    /* Numbers read best largest first; id and where in their order. */
    descending = column != GLTOP_COLUMN_ID && column != GLTOP_COLUMN_WHERE &&
                 column != GLTOP_COLUMN_STATE && column != GLTOP_COLUMN_THREAD;
    return rebuilt(s, gltop_model_set_sort(s->model, column, descending));
}

static gltop_action sort_next(gltop_screen *s) { return sort_by(s, 1); }
static gltop_action sort_previous(gltop_screen *s) { return sort_by(s, -1); }

static gltop_action sort_invert(gltop_screen *s)
{
    int descending;
    gltop_column column = gltop_model_sort(s->model, &descending);
    return rebuilt(s, gltop_model_set_sort(s->model, column, !descending));
}

static gltop_action start_filter(gltop_screen *s)
{
    s->editing_filter = 1;
    return GLTOP_ACTION_REDRAW;
}

/* A key while the filter is typed. */
static gltop_action edit_filter(gltop_screen *s, int key)
{
    size_t length = strlen(s->filter);
    if (key == '\n' || key == '\r' || key == KEY_ENTER) {
        s->editing_filter = 0;
    } else if (key == ESCAPE) {
        s->editing_filter = 0;
        s->filter[0] = '\0';
    } else if (key == KEY_BACKSPACE || key == 127 || key == CONTROL('h')) {
        if (length)
            s->filter[length - 1] = '\0';
    } else if (key == CONTROL('u')) {
        s->filter[0] = '\0';
    } else if (key >= 0x20 && key < 0x7f && length + 1 < sizeof s->filter) {
        s->filter[length] = (char)key;
        s->filter[length + 1] = '\0';
    } else {
        return GLTOP_ACTION_NONE;
    }
    return rebuilt(s, gltop_model_set_filter(s->model, s->filter));
}

/* ------------------------------------------------------------ the table */

struct binding {
    int keys[4];          /* 0 ends the list early */
    unsigned screens;     /* ON_* */
    gltop_action (*handle)(gltop_screen *);
    const char *help;     /* "KEYS\tWHAT"; NULL: not listed */
};

static const struct binding bindings[] = {
    {{KEY_UP, 'k'}, EVERYWHERE, up, "Up k\tmove up"},
    {{KEY_DOWN, 'j'}, EVERYWHERE, down, "Down j\tmove down"},
    {{KEY_PPAGE, CONTROL('b')}, EVERYWHERE, page_up, "PgUp ^B\tpage up"},
    {{KEY_NPAGE, CONTROL('f')}, EVERYWHERE, page_down, "PgDn ^F\tpage down"},
    {{KEY_HOME, 'g'}, EVERYWHERE, home, "Home g\tfirst line"},
    {{KEY_END, 'G'}, EVERYWHERE, end, "End G\tlast line"},
    {{'\n', '\r', KEY_ENTER}, ON_PICKER, watch_selected,
     "Enter\twatch the selected process"},
    {{'\n', '\r', KEY_ENTER, KEY_RIGHT}, ON_LIST, open_detail,
     "Enter Right\tdetail: stack region, flags, Python and native stacks"},
    {{'t'}, ON_LIST, toggle_tree, "t\ttree or flat view"},
    {{'s', '>', '.'}, ON_LIST, sort_next, "s > .\tsort by the next column"},
    {{'<', ','}, ON_LIST, sort_previous, "< ,\tsort by the previous column"},
    {{'I'}, ON_LIST, sort_invert, "I\tinvert the sort order"},
    {{'/'}, ON_LIST, start_filter,
     "/\tfilter by name, function or file (Enter keeps, Esc clears)"},
    {{'r'}, ON_DETAIL, ask_again, "r\task the process for the stacks again"},
    {{'r', CONTROL('l')}, ON_PICKER | ON_LIST, rescan, "r ^L\trefresh now"},
    {{' '}, ON_PICKER | ON_LIST | ON_DETAIL, pause_or_go_on,
     "Space\tpause or resume the refreshes"},
    {{ESCAPE, 'q', KEY_LEFT}, ON_DETAIL | ON_HELP, close_pane,
     "Esc q Left\tback"},
    {{'\n', '\r', KEY_ENTER, 'h'}, ON_DETAIL | ON_HELP, close_pane, NULL},
    {{KEY_BACKSPACE, 127, CONTROL('h')}, ON_DETAIL | ON_HELP, close_pane,
     NULL},
    {{ESCAPE, KEY_BACKSPACE, 127, CONTROL('h')}, ON_LIST, to_picker,
     "Esc Bksp\tback to the process picker"},
    {{'h', '?', KEY_F(1)}, ON_PICKER | ON_LIST, help, "h ? F1\tthis help"},
    {{'q', KEY_F(10)}, ON_PICKER | ON_LIST, quit, "q F10 ^C\tquit"},
};

static int binds(const struct binding *b, gltop_mode mode, int key)
{
    if (!(b->screens & (1u << mode)))
        return 0;
    for (size_t k = 0; k < sizeof b->keys / sizeof *b->keys && b->keys[k];
         k++)
        if (b->keys[k] == key)
            return 1;
    return 0;
}

gltop_action gltop_keys_dispatch(gltop_screen *screen, int key)
{
    screen->message[0] = '\0';
    if (key == KEY_RESIZE)
        return GLTOP_ACTION_REDRAW;
    if (screen->editing_filter && screen->mode == GLTOP_MODE_LIST)
        return edit_filter(screen, key);
    for (size_t i = 0; i < sizeof bindings / sizeof *bindings; i++)
        if (binds(&bindings[i], screen->mode, key))
            return bindings[i].handle(screen);
    return GLTOP_ACTION_REDRAW; /* the message is gone */
}

const char *gltop_keys_help(gltop_mode mode, size_t index)
{
    for (size_t i = 0; i < sizeof bindings / sizeof *bindings; i++)
        if ((bindings[i].screens & (1u << mode)) && bindings[i].help &&
            index-- == 0)
            return bindings[i].help;
    return NULL;
}
