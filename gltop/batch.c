/*
 * batch.c -- gltop's batch output (batch.h). Strings come from another
 * process and may hold anything but C0 controls: the text output writes
 * invalid UTF-8 and C1 controls as '?', so that a terminal shows them
 * without acting on them; the JSON output is valid UTF-8 (U+FFFD for
 * invalid bytes) and escapes what JSON requires and every control.
 */
#include "batch.h"
#include "format.h"

#include <inttypes.h>
#include <string.h>

/* Text rows are indented two spaces a level, up to this many levels: a
 * chain of parents thousands deep (a hostile segment's, or a program's)
 * would otherwise make each refresh megabytes of spaces. JSON gives every
 * depth. */
#define MAX_INDENT 64u

/* Writes `text` as valid UTF-8 without controls, '?' for the rest. */
static void put_text(const char *text, FILE *out)
{
    while (*text) {
        const char *start = text;
        long c = gltop_utf8_next(&text);
        if (c < 0 || gltop_is_control(c))
            fputc('?', out);
        else
            fwrite(start, 1, (size_t)(text - start), out);
    }
}

void gltop_batch_text(const gltop_model *model, int64_t pid,
                      const char *command, FILE *out)
{
    const gl_monitor_snapshot *s = gltop_model_snapshot(model);
    gltop_totals totals;
    gltop_model_totals(model, &totals);
    char rate[32], since[32];
    gltop_format_rate(rate, sizeof rate, gltop_model_process_rate(model));
    int at_least;
    uint64_t since_ns = gltop_model_since_last_switch(model, &at_least);
    gltop_format_at_least(since, sizeof since, since_ns, at_least);
    fprintf(out, "gltop - pid %" PRId64 " (", pid);
    put_text(command, out);
    fputs(")  ", out);
    put_text(s->runtime, out);
    fprintf(out,
            "  threads %zu  greenlets %" PRIu64 "  heap %" PRIu64
            " B (peak %s%" PRIu64 ")  switches/s %s  last switch %s ago\n",
            s->thread_count, totals.alive, totals.heap,
            s->thread_count > 1 ? "<=" : "", totals.heap_peak_bound, rate,
            since);
    fprintf(out, "%8s %-9s %4s %10s %10s %8s %7s %2s  %s\n", "ID", "STATE",
            "THR", "HEAP", "PEAK", "SW/S", "IDLE", "FL", "NAME / WHERE");
    for (size_t i = 0; i < gltop_model_row_count(model); i++) {
        const gltop_row *row = gltop_model_row(model, i);
        const gl_monitor_greenlet_view *g = row->greenlet;
        char idle[32], flags[8];
        gltop_format_rate(rate, sizeof rate, row->switches_per_second);
        gltop_format_duration(idle, sizeof idle, row->idle_ns);
        gltop_format_flags(flags, sizeof flags, row->flags);
        fprintf(out, "%8" PRIu64 " %-9s %4" PRIu64 " %10" PRIu64 " %10" PRIu64
                     " %8s %7s %2s  %*s",
                g->id, gltop_state_name(g->state), g->thread_serial,
                g->saved_bytes, g->saved_bytes_peak, rate, idle, flags,
                (int)(2 * (row->depth < MAX_INDENT ? row->depth : MAX_INDENT)),
                "");
        put_text(g->name[0] ? g->name : "?", out);
        if (g->has_place) {
            fputs("  ", out);
            put_text(g->function, out);
            fputs(" (", out);
            put_text(g->file, out);
            fprintf(out, ":%u)", g->line);
        }
        fputc('\n', out);
    }
    fputc('\n', out);
    fflush(out);
}

static void json_string(const char *text, FILE *out)
{
    fputc('"', out);
    while (*text) {
        const char *start = text;
        long c = gltop_utf8_next(&text);
        if (c < 0)
            fputs("\\ufffd", out);
        else if (c == '"' || c == '\\')
            fprintf(out, "\\%c", (int)c);
        else if (gltop_is_control(c))
            fprintf(out, "\\u%04lx", c);
        else
            fwrite(start, 1, (size_t)(text - start), out);
    }
    fputc('"', out);
}

static void json_number(double value, FILE *out)
{
    if (value < 0)
        fputs("null", out);
    else
        fprintf(out, "%.3f", value);
}

void gltop_batch_json(const gltop_model *model, int64_t pid,
                      const char *command, FILE *out)
{
    const gl_monitor_snapshot *s = gltop_model_snapshot(model);
    gltop_totals totals;
    gltop_model_totals(model, &totals);
    fprintf(out, "{\"pid\":%" PRId64 ",\"command\":", pid);
    json_string(command, out);
    fputs(",\"runtime\":", out);
    json_string(s->runtime, out);
    fprintf(out, ",\"threads\":%zu,\"greenlets_alive\":%" PRIu64
                 ",\"heap_bytes\":%" PRIu64 ",\"heap_bytes_peak\":%" PRIu64
                 ",\"switches_per_second\":",
            s->thread_count, totals.alive, totals.heap,
            totals.heap_peak_bound);
    json_number(gltop_model_process_rate(model), out);
    int at_least;
    uint64_t since = gltop_model_since_last_switch(model, &at_least);
    fputs(",\"seconds_since_last_switch\":", out);
    json_number(since == UINT64_MAX ? -1 : (double)since / 1e9, out);
    fprintf(out, ",\"no_switch_seen\":%s", at_least ? "true" : "false");
    fputs(",\"greenlets\":[", out);
    for (size_t i = 0; i < gltop_model_row_count(model); i++) {
        const gltop_row *row = gltop_model_row(model, i);
        const gl_monitor_greenlet_view *g = row->greenlet;
        fprintf(out, "%s{\"id\":%" PRIu64 ",\"parent_id\":%" PRIu64
                     ",\"depth\":%u,\"state\":\"%s\",\"thread\":%" PRIu64
                     ",\"heap_bytes\":%" PRIu64 ",\"heap_bytes_peak\":%" PRIu64
                     ",\"switches\":%" PRIu64 ",\"switches_per_second\":",
                i ? "," : "", g->id, g->parent_id, row->depth,
                gltop_state_name(g->state), g->thread_serial, g->saved_bytes,
                g->saved_bytes_peak, g->switches);
        json_number(row->switches_per_second, out);
        fputs(",\"idle_seconds\":", out);
        json_number(row->idle_ns == UINT64_MAX ? -1
                                               : (double)row->idle_ns / 1e9,
                    out);
        fprintf(out, ",\"hazard\":%s,\"blocking\":%s,\"name\":",
                row->flags & GLTOP_FLAG_HAZARD ? "true" : "false",
                row->flags & GLTOP_FLAG_BLOCKING ? "true" : "false");
        json_string(g->name, out);
        fputs(",\"function\":", out);
        json_string(g->function, out);
        fputs(",\"file\":", out);
        json_string(g->file, out);
        fprintf(out, ",\"line\":%u}", g->line);
    }
    fputs("]}\n", out);
    fflush(out);
}

void gltop_batch_processes(const gltop_process *processes, size_t count,
                           int json, FILE *out)
{
    if (!json)
        fprintf(out, "%7s %5s %9s %12s  %-16s %s\n", "PID", "THR",
                "GREENLETS", "HEAP", "RUNTIME", "COMMAND / ERROR");
    else
        fputs("{\"processes\":[", out);
    for (size_t i = 0; i < count; i++) {
        const gltop_process *p = &processes[i];
        if (json) {
            fprintf(out, "%s{\"pid\":%" PRId64 ",\"command\":", i ? "," : "",
                    p->pid);
            json_string(p->command, out);
            if (p->error) {
                fputs(",\"error\":", out);
                json_string(gl_strerror(p->error), out);
                fputs("}", out);
                continue;
            }
            fprintf(out, ",\"threads\":%zu,\"greenlets_alive\":%" PRIu64
                         ",\"heap_bytes\":%" PRIu64 ",\"runtime\":",
                    p->threads, p->greenlets_alive, p->heap_bytes);
            json_string(p->runtime, out);
            fputs("}", out);
        } else if (p->error) { /* the reason first, as in the picker */
            fprintf(out, "%7" PRId64 " %5s %9s %12s  (%s)  ", p->pid, "-", "-",
                    "-", gl_strerror(p->error));
            put_text(p->command, out);
            fputc('\n', out);
        } else {
            fprintf(out, "%7" PRId64 " %5zu %9" PRIu64 " %12" PRIu64 "  ",
                    p->pid, p->threads, p->greenlets_alive, p->heap_bytes);
            size_t runtime = strlen(p->runtime); /* ASCII, as published */
            put_text(p->runtime, out);
            fprintf(out, "%*s ", runtime < 16 ? (int)(16 - runtime) : 0, "");
            put_text(p->command, out);
            fputc('\n', out);
        }
    }
    fputs(json ? "]}\n" : "\n", out);
    fflush(out);
}
