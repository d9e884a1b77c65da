/*
 * view_panes.c -- the panels other than the list: the process picker, the
 * detail pane of one greenlet, and help. Each is a title, a bar, lines
 * that scroll, and the footer.
 */
#define _GNU_SOURCE
#include "format.h"
#include "view.h"

#include <inttypes.h>
#include <string.h>

static void title(const gltop_screen *s, const char *text, const char *bar)
{
    attrset(gltop_view_attr(s, GLTOP_COLOUR_TITLE, A_BOLD) | A_BOLD);
    gltop_view_put(0, 0, COLS, text);
    attr_t bar_attr = gltop_view_attr(s, GLTOP_COLOUR_BAR, A_REVERSE);
    attrset(bar_attr);
    gltop_view_fill(1, bar_attr);
    gltop_view_put(1, 0, COLS, bar);
    attrset(A_NORMAL);
}

/* ------------------------------------------------------------- picker */

void gltop_view_picker(gltop_screen *s)
{
    char text[128];
    snprintf(text, sizeof text,
             "gltop - processes that use greenlets (%zu), every %gs%s",
             s->process_count, s->delay_seconds, s->paused ? "  PAUSED" : "");
    title(s, text, "    PID   THR GREENLETS   HEAP  RUNTIME          COMMAND");
    size_t height = gltop_view_page_lines(s);
    gltop_cursor_fit(&s->picker, s->process_count, height);
    for (size_t i = 0; i < height && s->picker.top + i < s->process_count;
         i++) {
        size_t at = s->picker.top + i;
        const gltop_process *p = &s->processes[at];
        int y = GLTOP_PANE_HEADER_LINES + (int)i;
        attr_t base = at == s->picker.selected
                          ? gltop_view_attr(s, GLTOP_COLOUR_SELECTED,
                                            A_REVERSE)
                          : A_NORMAL;
        if (base != A_NORMAL)
            gltop_view_fill(y, base);
        attrset(base);
        char heap[16];
        gltop_format_bytes(heap, sizeof heap, p->heap_bytes);
        if (p->error) /* the reason first: commands can be long */
            gltop_view_printf(y, 0, COLS,
                              "%7" PRId64 " %5s %9s %6s  (%s)  %s", p->pid,
                              "-", "-", "-", gl_strerror(p->error),
                              p->command);
        else
            gltop_view_printf(y, 0, COLS,
                              "%7" PRId64 " %5zu %9" PRIu64 " %6s  %-16.16s %s",
                              p->pid, p->threads, p->greenlets_alive, heap,
                              p->runtime, p->command);
        attrset(A_NORMAL);
    }
    if (s->process_count == 0)
        gltop_view_put(GLTOP_PANE_HEADER_LINES + 1, 2, COLS - 2,
                       "No process publishes a greenlet monitor segment "
                       "that you may read; looking again at each refresh.");
    gltop_view_footer(s, "Enter\twatch\tr\trescan\tSpace\tpause\th\thelp\t"
                         "q\tquit");
}

/* ------------------------------------------------------------- detail */

static attr_t line_attr(const gltop_screen *s, gltop_line_kind kind)
{
    switch (kind) {
    case GLTOP_LINE_TITLE:
        return gltop_view_attr(s, GLTOP_COLOUR_TITLE, A_BOLD) | A_BOLD;
    case GLTOP_LINE_NOTE:
        return gltop_view_attr(s, GLTOP_COLOUR_NOTE, A_DIM);
    case GLTOP_LINE_ALERT:
        return gltop_view_attr(s, GLTOP_COLOUR_ALERT, A_BOLD) | A_BOLD;
    default:
        return A_NORMAL;
    }
}

/* Draws `count` lines from `top` (clamped so the last page stays full). */
static void scrolled_lines(gltop_screen *s, gltop_cursor *cursor,
                           const gltop_detail_line *lines, size_t count)
{
    size_t height = gltop_view_page_lines(s);
    if (count <= height)
        cursor->top = 0;
    else if (cursor->top > count - height)
        cursor->top = count - height;
    for (size_t i = 0; i < height && cursor->top + i < count; i++) {
        const gltop_detail_line *line = &lines[cursor->top + i];
        attrset(line_attr(s, line->kind));
        gltop_view_put(GLTOP_PANE_HEADER_LINES + (int)i, 0, COLS, line->text);
        attrset(A_NORMAL);
    }
}

void gltop_view_detail(gltop_screen *s)
{
    char text[160];
    snprintf(text, sizeof text, "gltop - pid %" PRId64 " - greenlet #%" PRIu64
             "%s", s->collector.pid, s->detail_id,
             s->paused ? "  PAUSED" : "");
    title(s, text, "Detail");
    gltop_detail detail;
    if (gltop_detail_build(s->model, s->detail_id, &s->stacks, &detail)) {
        gltop_view_put(GLTOP_PANE_HEADER_LINES, 0, COLS, "out of memory");
    } else {
        scrolled_lines(s, &s->detail, detail.lines, detail.count);
        gltop_detail_free(&detail);
    }
    gltop_view_footer(s, "Esc\tback\tr\task for the stacks again\t"
                         "Up/Down\tscroll\tSpace\tpause");
}

/* --------------------------------------------------------------- help */

void gltop_view_help(gltop_screen *s)
{
    static const char *const about[] = {
        "gltop shows the live greenlets of a process, read from the monitor",
        "segment it publishes (see man gltop, docs/monitor.md).",
        "",
        "Columns: ID, STATE (run, susp, new, dead), THR (the engine's thread",
        "number), HEAP (stack bytes copied to the heap now), PEAK, SW/S",
        "(switches per second), IDLE (since it last ran), FL (flags), name",
        "and where it is (function file:line).",
        "Flags: B  running without a switch for a while, its thread busy:",
        "          it blocks the other greenlets of its thread;",
        "       H  the last hazard audit found a word outside the engine",
        "          pointing into its saved stack (python -m greenlet.inspect",
        "          audit PID runs one and names the holders).",
        "",
        "Keys here:",
    };
    size_t about_count = sizeof about / sizeof *about;
    gltop_detail_line lines[64];
    char keys[32][160];
    size_t count = 0;
    for (size_t i = 0; i < about_count; i++)
        lines[count++] = (gltop_detail_line){GLTOP_LINE_TEXT, (char *)about[i]};
    for (size_t i = 0; i < 32 && count < 64; i++) {
        const char *help = gltop_keys_help(s->mode_under_help, i);
        if (!help)
            break;
        const char *tab = strchr(help, '\t');
        snprintf(keys[i], sizeof keys[i], "  %-12.*s %s",
                 tab ? (int)(tab - help) : 0, help, tab ? tab + 1 : help);
        lines[count++] = (gltop_detail_line){GLTOP_LINE_TEXT, keys[i]};
    }
    title(s, "gltop - help", "Help");
    scrolled_lines(s, &s->help, lines, count);
    gltop_view_footer(s, "Esc\tback\tUp/Down\tscroll");
}
