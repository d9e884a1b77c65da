/*
 * detail.c -- the detail pane's lines (detail.h).
 *
 * The saved region: a suspended greenlet's stack is [stack_pointer,
 * stack_stop); its lowest `saved_bytes` of that, [stack_pointer,
 * stack_pointer + saved_bytes), have been copied to the heap because
 * other greenlets needed that part of the thread's stack, and the rest is
 * still where it was. Those stack addresses are what an extension's
 * pointer would hold, so they are what the pane shows.
 */
#define _GNU_SOURCE
#include "detail.h"
#include "format.h"
#include "monitor_layout.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct builder {
    gltop_detail *detail;
    size_t capacity;
    int failed;
};

static void add(struct builder *b, gltop_line_kind kind, const char *format,
                ...) __attribute__((format(printf, 3, 4)));

static void add(struct builder *b, gltop_line_kind kind, const char *format,
                ...)
{
    if (b->failed)
        return;
    gltop_detail *d = b->detail;
    if (d->count == b->capacity) {
        size_t capacity = b->capacity ? 2 * b->capacity : 32;
        gltop_detail_line *lines =
            realloc(d->lines, capacity * sizeof *lines);
        if (!lines) {
            b->failed = 1;
            return;
        }
        d->lines = lines;
        b->capacity = capacity;
    }
    va_list arguments;
    va_start(arguments, format);
    char *text;
    int length = vasprintf(&text, format, arguments);
    va_end(arguments);
    if (length < 0) {
        b->failed = 1;
        return;
    }
    d->lines[d->count++] = (gltop_detail_line){kind, text};
}

static const gl_monitor_thread_view *find_thread(const gl_monitor_snapshot *s,
                                                 uint64_t serial)
{
    for (size_t i = 0; i < s->thread_count; i++)
        if (s->threads[i].serial == serial)
            return &s->threads[i];
    return NULL;
}

static void add_facts(struct builder *b, const gltop_model *model,
                      const gl_monitor_greenlet_view *g)
{
    const gl_monitor_snapshot *s = gltop_model_snapshot(model);
    const gl_monitor_thread_view *t = find_thread(s, g->thread_serial);
    gltop_row parent_row;
    const gl_monitor_greenlet_view *parent =
        gltop_model_greenlet(model, g->parent_id, &parent_row)
            ? parent_row.greenlet
            : NULL;
    gltop_row row;
    gltop_model_greenlet(model, g->id, &row); /* g is in the snapshot */
    char rate[16], idle[48], age[16];
    gltop_format_rate(rate, sizeof rate, row.switches_per_second);
    if (row.idle_ns != UINT64_MAX) {
        gltop_format_duration(idle, sizeof idle - 4, row.idle_ns);
        strcat(idle, " ago");
    } else {
        char watched[16];
        gltop_format_duration(watched, sizeof watched,
                              gltop_model_watched_ns(model));
        snprintf(idle, sizeof idle, "not in the %s watched", watched);
    }
    gltop_format_duration(age, sizeof age,
                          s->published_ns >= g->created_ns
                              ? s->published_ns - g->created_ns
                              : UINT64_MAX);

    add(b, GLTOP_LINE_TEXT, "name        %s", g->name[0] ? g->name : "?");
    add(b, GLTOP_LINE_TEXT, "state       %s%s", gltop_state_name(g->state),
        g->is_main ? " (the thread's main greenlet)" : "");
    if (t)
        add(b, GLTOP_LINE_TEXT, "thread      %" PRIu64 " \"%s\", tid %" PRId64
            "%s", t->serial, t->name, t->os_id, t->exited ? ", exited" : "");
    else
        add(b, GLTOP_LINE_TEXT, "thread      %" PRIu64, g->thread_serial);
    if (parent)
        add(b, GLTOP_LINE_TEXT, "parent      #%" PRIu64 " %s", parent->id,
            parent->name);
    else if (g->parent_id)
        add(b, GLTOP_LINE_TEXT, "parent      #%" PRIu64 " (not published)",
            g->parent_id);
    else
        add(b, GLTOP_LINE_TEXT, "parent      none");
    add(b, GLTOP_LINE_TEXT,
        "switches    %" PRIu64 " (%s/s), last ran %s, created %s ago",
        g->switches, rate, idle, age);
    if (g->has_place)
        add(b, GLTOP_LINE_TEXT, "where       %s  %s:%u", g->function, g->file,
            g->line);
    else
        add(b, GLTOP_LINE_NOTE, "where       not published (no runtime "
                                "describes this greenlet)");
    if (g->has_spawn_site)
        add(b, GLTOP_LINE_TEXT, "spawned at  %s  %s:%u", g->spawn_function,
            g->spawn_file, g->spawn_line);
    else
        add(b, GLTOP_LINE_NOTE, "spawned at  not recorded (greenlet.inspect."
                                "record_spawn_sites(True) records it)");
}

static void add_region(struct builder *b, const gl_monitor_greenlet_view *g)
{
    char saved[16], peak[16], live[16], whole[16];
    gltop_format_bytes(peak, sizeof peak, g->saved_bytes_peak);
    add(b, GLTOP_LINE_TITLE, "Stack");
    if (g->state != GL_STATE_SUSPENDED || !g->stack_pointer ||
        g->stack_pointer > g->stack_stop ||
        g->saved_bytes > g->stack_stop - g->stack_pointer) {
        add(b, GLTOP_LINE_TEXT, "  %s: no saved region (%s held at the peak)",
            g->state == GL_STATE_RUNNING ? "running, on its thread's stack"
            : g->state == GL_STATE_NEW   ? "not started"
            : g->state == GL_STATE_DEAD  ? "finished"
                                         : "suspended, stack not published",
            peak);
        return;
    }
    uint64_t size = g->stack_stop - g->stack_pointer;
    uint64_t saved_end = g->stack_pointer + g->saved_bytes;
    gltop_format_bytes(whole, sizeof whole, size);
    gltop_format_bytes(saved, sizeof saved, g->saved_bytes);
    gltop_format_bytes(live, sizeof live, size - g->saved_bytes);
    add(b, GLTOP_LINE_TEXT, "  whole   0x%" PRIx64 " - 0x%" PRIx64 "  %s",
        g->stack_pointer, g->stack_stop, whole);
    if (g->saved_bytes)
        add(b, GLTOP_LINE_TEXT,
            "  saved   0x%" PRIx64 " - 0x%" PRIx64
            "  %s (%" PRIu64 " bytes), copied to the heap",
            g->stack_pointer, saved_end, saved, g->saved_bytes);
    else
        add(b, GLTOP_LINE_TEXT, "  saved   none now");
    if (size > g->saved_bytes)
        add(b, GLTOP_LINE_TEXT, "  live    0x%" PRIx64 " - 0x%" PRIx64
            "  %s, still on the thread's stack", saved_end, g->stack_stop,
            live);
    add(b, GLTOP_LINE_TEXT, "  peak    %s held on the heap at most", peak);
}

static const gltop_thread_row *thread_row(const gltop_model *model,
                                          uint64_t serial)
{
    for (size_t i = 0; i < gltop_model_thread_count(model); i++)
        if (gltop_model_thread(model, i)->thread->serial == serial)
            return gltop_model_thread(model, i);
    return NULL;
}

/* Splits `line` at tabs into at most `max` fields; returns how many. */
static size_t split_fields(char *line, char **field, size_t max)
{
    size_t n = 0;
    for (char *rest = line; n < max && rest;) {
        field[n++] = rest;
        rest = strchr(rest, '\t');
        if (rest)
            *rest++ = '\0';
    }
    return n;
}

/* Calls show(b, fields) for each line of the audit answer in `stacks`
 * that is a `kind` line of at least `minimum` fields about greenlet `id`
 * (its first field after the kind), up to `count` fields (later ones are
 * NULL when missing: a process of an older version); returns how many.
 * Fields beyond `count` (a newer version's) are left in the last. */
typedef void answer_line_shower(struct builder *b, char **fields);
static size_t show_answer_lines(struct builder *b, uint64_t id,
                                const gltop_detail_stacks *stacks,
                                const char *kind, size_t minimum,
                                size_t count, answer_line_shower *show)
{
    if (!stacks || stacks->id != id || !stacks->audit)
        return 0;
    char *copy = strdup(stacks->audit);
    if (!copy) {
        b->failed = 1;
        return 0;
    }
    size_t shown = 0;
    for (char *line = copy, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *f[16] = {0};
        if (split_fields(line, f, count) < minimum || strcmp(f[0], kind) != 0 ||
            strtoull(f[1], NULL, 10) != id)
            continue;
        show(b, f);
        shown++;
    }
    free(copy);
    return shown;
}

/* A "hazard" line: a word pointing into the greenlet's stack. */
static void show_hazard(struct builder *b, char **f)
{
    unsigned long long pointer = strtoull(f[3], NULL, 16);
    unsigned long long start = strtoull(f[4], NULL, 16);
    add(b, GLTOP_LINE_ALERT, "     %s%s%s (%s) holds 0x%llx (%s+%llu)%s%s%s",
        f[7][0] ? f[7] : f[2], f[7][0] ? "+" : "", f[7][0] ? f[8] : "",
        gltop_base_name(f[6]), pointer,
        f[12] && strcmp(f[12], "live") == 0 ? "live" : "saved",
        pointer - start,
        f[9][0] ? ", in " : "", f[9], f[9][0] ? "()" : "");
}

/* A "write" line: a write through a watched address, caught. */
static void show_write(struct builder *b, char **f)
{
    add(b, GLTOP_LINE_ALERT, "     thread %s wrote to %s, %s (%s): %s", f[3],
        f[2], f[4], f[5], f[6][0] ? f[6] : "no backtrace");
}

/* The hits of the audit answer in `stacks` that point into greenlet
 * `id`'s stack, and the writes into it that watches caught. */
static void add_hazard_hits(struct builder *b, uint64_t id,
                            const gltop_detail_stacks *stacks)
{
    if (stacks && stacks->id == id && stacks->audit &&
        !show_answer_lines(b, id, stacks, "hazard", 12, 13, show_hazard))
        add(b, GLTOP_LINE_NOTE, "     the audit just asked for found none "
                                "now (r asks again)");
    show_answer_lines(b, id, stacks, "write", 7, 7, show_write);
}

static void add_flags(struct builder *b, const gltop_model *model,
                      const gl_monitor_greenlet_view *g,
                      const gltop_detail_stacks *stacks)
{
    gltop_row row;
    gltop_model_greenlet(model, g->id, &row);
    unsigned flags = row.flags;
    const gltop_thread_row *thread = thread_row(model, g->thread_serial);
    add(b, GLTOP_LINE_TITLE, "Flags and hazards");
    if (g->state == GL_STATE_RUNNING && thread) {
        char unswitched[16], busy[16] = "unknown";
        gltop_format_duration(unswitched, sizeof unswitched,
                              thread->unswitched_ns);
        if (thread->busy >= 0)
            snprintf(busy, sizeof busy, "%.0f%%", 100 * thread->busy);
        add(b, GLTOP_LINE_TEXT, "  running: no switch in its thread for at "
                                "least %s; the thread's CPU use %s",
            unswitched, busy);
    }
    if (flags & GLTOP_FLAG_BLOCKING)
        add(b, GLTOP_LINE_ALERT, "  B  running without a switch while its "
                                 "thread is busy: it blocks the others");
    if (g->has_hazard) {
        add(b, GLTOP_LINE_ALERT, "  H  the last hazard audit found a word "
                                 "outside the engine pointing into its "
                                 "saved stack (python -m greenlet.inspect "
                                 "audit PID names the holders)");
        add_hazard_hits(b, g->id, stacks);
    } else
        add(b, GLTOP_LINE_TEXT, "  no hazard flagged in the segment");
    if (!(flags & GLTOP_FLAG_BLOCKING))
        add(b, GLTOP_LINE_TEXT, "  not blocking");
}

static const char *request_failure(int error)
{
    switch (error) {
    case GL_ETIMEDOUT:
        return "no answer in time: the process may be busy (a long call "
               "holding its GIL?); r asks again";
    default:
        return gl_strerror(error);
    }
}

/* One answer line "KIND\tA\tB..." as a pane line; sections start when
 * the kind changes. */
static void add_answer_line(struct builder *b, char *line, char *section)
{
    char *field[5] = {0};
    size_t n = split_fields(line, field, 5);
    char kind = strcmp(field[0], "python") == 0   ? 'p'
                : strcmp(field[0], "native") == 0 ? 'n'
                                                  : 'o';
    if (kind != 'o' && kind != *section) {
        *section = kind;
        add(b, GLTOP_LINE_TITLE, kind == 'p' ? "Python stack, innermost first"
                                             : "Native stack, innermost first");
    }
    if (kind == 'p' && n >= 4) /* the where line has the whole path */
        add(b, GLTOP_LINE_TEXT, "  %-28s %s:%s", field[1],
            gltop_base_name(field[2]), field[3]);
    else if (kind == 'n' && n >= 5)
        add(b, GLTOP_LINE_TEXT, "  %18s  %s+%s  %s", field[4], field[1],
            field[2], gltop_base_name(field[3]));
    else if (strcmp(field[0], "note") == 0 && n >= 2)
        add(b, GLTOP_LINE_NOTE, "  %s", field[1]);
    else if (*field[0])
        add(b, GLTOP_LINE_NOTE, "  (a line gltop does not know: %s)",
            field[0]);
}

static void add_stacks(struct builder *b, uint64_t id,
                       const gltop_detail_stacks *stacks)
{
    if (!stacks || stacks->id != id) {
        add(b, GLTOP_LINE_TITLE, "Stacks");
        add(b, GLTOP_LINE_NOTE, "  not asked for yet (r asks)");
        return;
    }
    char when[32];
    struct tm local;
    strftime(when, sizeof when, "%H:%M:%S",
             localtime_r(&stacks->asked_at, &local));
    if (stacks->error || !stacks->text) {
        add(b, GLTOP_LINE_TITLE, "Stacks, asked at %s", when);
        add(b, GLTOP_LINE_NOTE, "  %s", request_failure(stacks->error));
        return;
    }
    if (stacks->status == GL_MONITOR_ANSWER_NO_SUCH_GREENLET) {
        add(b, GLTOP_LINE_TITLE, "Stacks, asked at %s", when);
        add(b, GLTOP_LINE_NOTE, "  the process no longer has this greenlet");
        return;
    }
    add(b, GLTOP_LINE_NOTE, "Stacks as the process answered at %s (r asks "
                            "again)", when);
    char *copy = strdup(stacks->text), section = 0;
    if (!copy) {
        b->failed = 1;
        return;
    }
    for (char *line = copy, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        add_answer_line(b, line, &section);
    }
    free(copy);
    if (stacks->status == GL_MONITOR_ANSWER_TRUNCATED)
        add(b, GLTOP_LINE_NOTE, "  (the answer was cut: it did not fit the "
                                "segment's answer area)");
}

int gltop_detail_build(const gltop_model *model, uint64_t id,
                       const gltop_detail_stacks *stacks, gltop_detail *out)
{
    *out = (gltop_detail){0};
    struct builder b = {out, 0, 0};
    gltop_row row;
    const gl_monitor_greenlet_view *g =
        gltop_model_greenlet(model, id, &row) ? row.greenlet : NULL;
    if (!g) {
        add(&b, GLTOP_LINE_NOTE, "greenlet #%" PRIu64 " is gone: it is no "
                                 "longer in the process's records", id);
    } else {
        add_facts(&b, model, g);
        add_region(&b, g);
        add_flags(&b, model, g, stacks);
        add_stacks(&b, id, stacks);
    }
    if (b.failed) {
        gltop_detail_free(out);
        return GL_ENOMEM;
    }
    return 0;
}

void gltop_detail_free(gltop_detail *detail)
{
    for (size_t i = 0; i < detail->count; i++)
        free(detail->lines[i].text);
    free(detail->lines);
    *detail = (gltop_detail){0};
}

void gltop_detail_stacks_clear(gltop_detail_stacks *stacks)
{
    free(stacks->text);
    free(stacks->audit);
    *stacks = (gltop_detail_stacks){0};
}
