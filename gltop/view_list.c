/*
 * view_list.c -- the main panel: the watched process's facts in three
 * lines, the column titles (the sort column marked), and a row per
 * greenlet, indented under its parent in the tree view.
 *
 * Columns, 52 cells before NAME / WHERE so that 80 columns leave 28 for
 * it: ID 7, STATE 6 (run, susp, new, dead), THR 4, HEAP 6, PEAK 6, SW/S 6,
 * IDLE 7 (">12m03s"), FL 2, with a space after each; each is wide enough
 * for its title and the sort mark (^ ascending, v descending). ID and THR
 * grow to the widest number of the snapshot: ids are never reused, so a
 * long-lived server's pass ten million, and a cut number would name
 * another greenlet.
 */
#define _GNU_SOURCE
#include "format.h"
#include "view.h"

#include <inttypes.h>
#include <string.h>

struct column {
    const char *title;
    int width;          /* 0: the rest of the line */
    int right;          /* aligned right */
    int sorts;          /* the gltop_column it sorts by, -1: none */
};

static const struct column columns[] = {
    {"ID", 7, 1, GLTOP_COLUMN_ID},       {"STATE", 6, 0, GLTOP_COLUMN_STATE},
    {"THR", 4, 1, GLTOP_COLUMN_THREAD},  {"HEAP", 6, 1, GLTOP_COLUMN_HEAP},
    {"PEAK", 6, 1, GLTOP_COLUMN_PEAK},   {"SW/S", 6, 1, GLTOP_COLUMN_RATE},
    {"IDLE", 7, 1, GLTOP_COLUMN_IDLE},   {"FL", 2, 0, -1},
    {"NAME / WHERE", 0, 0, GLTOP_COLUMN_WHERE},
};
#define COLUMN_COUNT (sizeof columns / sizeof *columns)

static int digits(uint64_t n)
{
    int count = 1;
    while (n >= 10) {
        n /= 10;
        count++;
    }
    return count;
}

/* The columns for this snapshot: ID and THR as wide as their widest. */
static void lay_out(const gl_monitor_snapshot *snap, struct column *layout)
{
    memcpy(layout, columns, sizeof columns);
    uint64_t id = 0, thread = 0;
    for (size_t i = 0; snap && i < snap->greenlet_count; i++) {
        if (snap->greenlets[i].id > id)
            id = snap->greenlets[i].id;
        if (snap->greenlets[i].thread_serial > thread)
            thread = snap->greenlets[i].thread_serial;
    }
    if (digits(id) + 1 > layout[0].width) /* room for the sort mark */
        layout[0].width = digits(id) + 1;
    if (digits(thread) + 1 > layout[2].width)
        layout[2].width = digits(thread) + 1;
}

static const char *short_state(gl_state state)
{
    static const char *const names[] = {"new", "run", "susp", "dead"};
    return (unsigned)state < 4 ? names[state] : "?";
}

/* Writes cell `text` of column c at x; returns the next column's x. */
static int cell(int y, int x, const struct column *c, const char *text)
{
    int width = c->width ? c->width : COLS - x;
    int length = (int)strlen(text);
    int pad = c->right && length < width ? width - length : 0;
    gltop_view_put(y, x + pad, width - pad, text);
    return x + width + 1;
}

static void header(const gltop_screen *s)
{
    const gl_monitor_snapshot *snap = gltop_model_snapshot(s->model);
    const gltop_collector *c = &s->collector;
    attrset(gltop_view_attr(s, GLTOP_COLOUR_TITLE, A_BOLD) | A_BOLD);
    int x = gltop_view_printf(0, 0, COLS, "gltop - pid %" PRId64 " ", c->pid);
    attrset(A_NORMAL);
    /* The runtime at the right end; the command is cut to leave it room. */
    int runtime = snap ? (int)strlen(snap->runtime) : 0;
    int room = COLS - x - (runtime ? runtime + 2 : 0);
    if (room < 20) {
        room = COLS - x;
        runtime = 0;
    }
    gltop_view_put(0, x, room, c->command);
    if (runtime)
        gltop_view_put(0, COLS - runtime, runtime, snap->runtime);
    if (!snap) {
        gltop_view_put(1, 0, COLS, "waiting for the process to publish...");
        return;
    }

    gltop_totals totals;
    gltop_model_totals(s->model, &totals);
    char heap[16], heap_peak[16];
    gltop_format_bytes(heap, sizeof heap, totals.heap);
    gltop_format_bytes(heap_peak, sizeof heap_peak, totals.heap_peak_bound);
    gltop_view_printf(1, 0, COLS,
                      "threads %zu  greenlets %" PRIu64 " (%" PRIu64
                      " run, %" PRIu64 " susp, %" PRIu64 " new)  heap %s"
                      "  peak %s%s",
                      snap->thread_count, totals.alive,
                      totals.by_state[GL_STATE_RUNNING],
                      totals.by_state[GL_STATE_SUSPENDED],
                      totals.by_state[GL_STATE_NEW], heap,
                      snap->thread_count > 1 ? "<=" : "", heap_peak);

    char rate[16], since[16];
    gltop_format_rate(rate, sizeof rate, gltop_model_process_rate(s->model));
    int at_least;
    uint64_t since_ns = gltop_model_since_last_switch(s->model, &at_least);
    gltop_format_at_least(since, sizeof since, since_ns, at_least);
    x = gltop_view_printf(2, 0, COLS, "switches/s %s  last switch %s ago  ",
                          rate, since);
    if (totals.blocking) {
        attrset(gltop_view_attr(s, GLTOP_COLOUR_ALERT, A_BOLD) | A_BOLD);
        x += gltop_view_printf(2, x, COLS - x, "%zu blocked  ",
                               totals.blocking);
        attrset(A_NORMAL);
    }
    const char *filter = gltop_model_filter(s->model);
    if (*filter)
        x += gltop_view_printf(2, x, COLS - x, "filter \"%s\"  ", filter);
    attrset(gltop_view_attr(s, GLTOP_COLOUR_NOTE, A_BOLD) | A_BOLD);
    if (s->paused)
        x += gltop_view_put(2, x, COLS - x, "PAUSED  ");
    if (s->stale) {
        gltop_format_duration(since, sizeof since,
                              gltop_monotonic_ns() - s->last_fresh_ns);
        gltop_view_printf(2, x, COLS - x, "no new data for %s", since);
    }
    attrset(A_NORMAL);
}

static void column_titles(const gltop_screen *s, const struct column *layout,
                          int y)
{
    int descending;
    gltop_column sorted = gltop_model_sort(s->model, &descending);
    attr_t bar = gltop_view_attr(s, GLTOP_COLOUR_BAR, A_REVERSE);
    attrset(bar);
    gltop_view_fill(y, bar);
    int x = 0;
    for (size_t i = 0; i < COLUMN_COUNT; i++) {
        const struct column *c = &layout[i];
        char title[32];
        int is_sorted = c->sorts == (int)sorted;
        snprintf(title, sizeof title, "%s%s", c->title,
                 is_sorted ? (descending ? "v" : "^") : "");
        if (i == COLUMN_COUNT - 1 && gltop_model_tree(s->model))
            snprintf(title, sizeof title, "%s%s (tree)", c->title,
                     is_sorted ? (descending ? "v" : "^") : "");
        if (is_sorted)
            attrset(gltop_view_attr(s, GLTOP_COLOUR_SORTED, A_BOLD) | A_BOLD);
        int width = c->width ? c->width : COLS - x;
        int length = (int)strlen(title);
        gltop_view_put(y, x + (c->right && length < width ? width - length
                                                          : 0),
                       width, title);
        attrset(bar);
        x += width + 1;
    }
    attrset(A_NORMAL);
}

static attr_t state_attr(const gltop_screen *s, gl_state state)
{
    switch (state) {
    case GL_STATE_RUNNING:
        return gltop_view_attr(s, GLTOP_COLOUR_RUNNING, A_BOLD);
    case GL_STATE_NEW:
        return gltop_view_attr(s, GLTOP_COLOUR_NEW, A_NORMAL);
    case GL_STATE_DEAD:
        return gltop_view_attr(s, GLTOP_COLOUR_DEAD, A_DIM);
    default:
        return A_NORMAL;
    }
}

static void row(const gltop_screen *s, const struct column *layout, int y,
                const gltop_row *r, int selected)
{
    const gl_monitor_greenlet_view *g = r->greenlet;
    attr_t base = selected ? gltop_view_attr(s, GLTOP_COLOUR_SELECTED,
                                             A_REVERSE)
                           : A_NORMAL;
    if (selected)
        gltop_view_fill(y, base);
    char text[64];
    int x = 0;
    attrset(base);
    snprintf(text, sizeof text, "%" PRIu64, g->id);
    x = cell(y, x, &layout[0], text);
    if (!selected)
        attrset(state_attr(s, g->state));
    x = cell(y, x, &layout[1], short_state(g->state));
    attrset(base);
    snprintf(text, sizeof text, "%" PRIu64, g->thread_serial);
    x = cell(y, x, &layout[2], text);
    gltop_format_bytes(text, sizeof text, g->saved_bytes);
    x = cell(y, x, &layout[3], text);
    gltop_format_bytes(text, sizeof text, g->saved_bytes_peak);
    x = cell(y, x, &layout[4], text);
    gltop_format_rate(text, sizeof text, r->switches_per_second);
    x = cell(y, x, &layout[5], text);
    if (r->idle_ns == UINT64_MAX && gltop_model_watched_ns(s->model))
        /* Not seen running since gltop began: idle at least that long. */
        gltop_format_at_least(text, sizeof text,
                              gltop_model_watched_ns(s->model), 1);
    else
        gltop_format_duration(text, sizeof text, r->idle_ns);
    x = cell(y, x, &layout[6], text);
    gltop_format_flags(text, sizeof text, r->flags);
    if (r->flags && !selected)
        attrset(gltop_view_attr(s, GLTOP_COLOUR_ALERT, A_BOLD) | A_BOLD);
    x = cell(y, x, &layout[7], text);
    attrset(base);
    /* NAME / WHERE: indented by depth, at most half the room. */
    int indent = (int)(2 * r->depth);
    if (indent > (COLS - x) / 2)
        indent = (COLS - x) / 2;
    x += indent;
    x += gltop_view_put(y, x, COLS - x, g->name[0] ? g->name : "?");
    if (g->has_place && x + 2 < COLS) {
        if (!selected)
            attrset(gltop_view_attr(s, GLTOP_COLOUR_NOTE, A_NORMAL));
        gltop_view_printf(y, x + 2, COLS - x - 2, "%s %s:%u", g->function,
                          gltop_base_name(g->file), g->line);
    }
    attrset(A_NORMAL);
}

void gltop_view_list(gltop_screen *s)
{
    header(s);
    struct column layout[COLUMN_COUNT];
    lay_out(gltop_model_snapshot(s->model), layout);
    column_titles(s, layout, GLTOP_LIST_HEADER_LINES - 1);
    size_t count = gltop_model_row_count(s->model);
    size_t height = gltop_view_page_lines(s);
    gltop_cursor_fit(&s->list, count, height);
    for (size_t i = 0; i < height && s->list.top + i < count; i++) {
        size_t at = s->list.top + i;
        row(s, layout, GLTOP_LIST_HEADER_LINES + (int)i,
            gltop_model_row(s->model, at),
            at == s->list.selected);
    }
    if (count == 0 && gltop_model_snapshot(s->model))
        gltop_view_put(GLTOP_LIST_HEADER_LINES, 1, COLS - 1,
                       *gltop_model_filter(s->model)
                           ? "no greenlet matches the filter"
                           : "no greenlets");
    if (s->editing_filter) {
        int y = LINES - 1;
        move(y, 0);
        clrtoeol();
        int x = gltop_view_printf(y, 0, COLS, "filter: %s", s->filter);
        if (x < COLS)
            mvaddch(y, x, ' ' | A_REVERSE); /* the cursor */
        gltop_view_put(y, x + 2, COLS - x - 2,
                       "(Enter keeps it, Esc clears it)");
        return;
    }
    gltop_view_footer(s, "Enter\tdetail\tt\ttree\ts\tsort\t/\tfilter\t"
                         "Space\tpause\tEsc\tback\th\thelp\tq\tquit");
}
