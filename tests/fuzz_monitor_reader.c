/*
 * fuzz_monitor_reader.c -- the libFuzzer target of the monitor segment
 * parser, gl_monitor_parse (inspect/monitor_parse.c), whose input is
 * written by another, untrusted process.
 *
 * Each input is parsed as a segment image. A failure must be a code of the
 * error table and leave no snapshot; a success must hold up to every
 * promise of glmonitor.h, checked here by touching every field and every
 * byte of every string (so that ASan sees a bad pointer or a missing
 * terminator) and by abort() on a broken promise: a state outside the
 * four, a control character or an over-long string, flags not 0 or 1.
 * A snapshot that passes then goes through gltop as the screen and the
 * batch mode would take it (gltop/: two samples into the model, every
 * view and sort, a filter, the detail pane, text and JSON output), since
 * gltop must not misbehave on anything the parser lets through: odd
 * trees, duplicate ids, any bytes in strings.
 *
 * Built and run by `make fuzz-monitor`, which starts from the corpus in
 * tests/corpus/monitor; the C suite parses that corpus on every run.
 */
#include "batch.h"
#include "detail.h"
#include "glmonitor.h"
#include "model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A string of a snapshot: terminated, bounded, no control characters. */
static uint64_t check_text(const char *text, size_t limit)
{
    if (!text)
        abort();
    size_t length = strlen(text);
    if (length > limit)
        abort();
    uint64_t sum = length;
    for (size_t i = 0; i < length; i++) {
        unsigned char byte = (unsigned char)text[i];
        if (byte < 0x20 || byte == 0x7f)
            abort();
        sum += byte;
    }
    return sum;
}

static void check_flag(int flag)
{
    if (flag != 0 && flag != 1)
        abort();
}

/* What gltop does with a snapshot of `data`: the model takes two (for
 * rates), every view is built, and everything is written out. */
static void through_gltop(const uint8_t *data, size_t size,
                          const gl_monitor_snapshot *checked)
{
    static FILE *nowhere;
    if (!nowhere && !(nowhere = fopen("/dev/null", "w")))
        abort();
    gltop_model *model;
    gl_monitor_snapshot *second;
    if (gltop_model_create(&model) != 0 ||
        gl_monitor_parse(data, size, &second) != 0)
        abort();
    double busy[4] = {1, 0.1, -1, 0.9};
    int code = gltop_model_update(model, second, 1000, NULL);
    if (code == GL_ECORRUPT) { /* duplicate ids: refused, nothing kept */
        gltop_model_destroy(model);
        return;
    }
    if (code != 0 || gl_monitor_parse(data, size, &second) != 0 ||
        gltop_model_update(model, second, 2000000000,
                           second->thread_count <= 4 ? busy : NULL) != 0)
        abort();
    /* Every sort column, in the tree or flat view and the direction that
     * the input's last byte picks (all of them would cost 4 times more,
     * for code that is the same in each). */
    unsigned pick = size ? data[size - 1] : 0;
    if (gltop_model_set_tree(model, (int)(pick & 1)) != 0)
        abort();
    for (int column = 0; column < GLTOP_COLUMNS; column++)
        if (gltop_model_set_sort(model, (gltop_column)column,
                                 (int)(pick >> (1 + column % 7) & 1)) != 0 ||
            gltop_model_row_count(model) != checked->greenlet_count)
            abort(); /* each greenlet shown once, in every view */
    if (gltop_model_set_filter(model, "a") != 0 ||
        gltop_model_row_count(model) > checked->greenlet_count)
        abort();
    gltop_batch_text(model, 1, "command", nowhere);
    gltop_batch_json(model, 1, "command", nowhere);
    uint64_t ids[2] = {checked->greenlet_count ? checked->greenlets[0].id : 1,
                       UINT64_MAX};
    for (size_t i = 0; i < 2; i++) {
        gltop_detail detail;
        if (gltop_detail_build(model, ids[i], NULL, &detail) != 0 ||
            detail.count == 0)
            abort();
        gltop_detail_free(&detail);
    }
    gltop_model_destroy(model);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gl_monitor_snapshot *snapshot = NULL;
    int code = gl_monitor_parse(data, size, &snapshot);
    if (code != 0) {
        if (snapshot || strcmp(gl_error_name(code), "GL_EUNKNOWN") == 0)
            abort();
        return 0;
    }
    if (!snapshot)
        abort();
    check_flag(snapshot->has_places);
    uint64_t sum = (uint64_t)snapshot->pid + snapshot->publications +
                   snapshot->published_ns + snapshot->process_saved_bytes +
                   check_text(snapshot->runtime, 48);
    if ((snapshot->thread_count != 0) != (snapshot->threads != NULL) ||
        (snapshot->greenlet_count != 0) != (snapshot->greenlets != NULL))
        abort();
    for (size_t i = 0; i < snapshot->thread_count; i++) {
        const gl_monitor_thread_view *thread = &snapshot->threads[i];
        check_flag(thread->exited);
        sum += thread->serial + (uint64_t)thread->os_id + thread->switches +
               thread->current_id + thread->saved_bytes +
               thread->saved_bytes_peak + thread->greenlets +
               check_text(thread->name, GL_MONITOR_MAX_STRING_BYTES);
    }
    for (size_t i = 0; i < snapshot->greenlet_count; i++) {
        const gl_monitor_greenlet_view *greenlet = &snapshot->greenlets[i];
        if ((unsigned)greenlet->state > GL_STATE_DEAD)
            abort();
        check_flag(greenlet->is_main);
        check_flag(greenlet->has_place);
        check_flag(greenlet->has_spawn_site);
        check_flag(greenlet->has_hazard);
        sum += greenlet->id + greenlet->parent_id + greenlet->thread_serial +
               greenlet->stack_pointer + greenlet->stack_stop +
               greenlet->saved_bytes + greenlet->saved_bytes_peak +
               greenlet->switches + greenlet->created_ns +
               greenlet->last_ran_serial + greenlet->line +
               greenlet->spawn_line;
        const char *texts[] = {greenlet->name, greenlet->function,
                               greenlet->file, greenlet->spawn_function,
                               greenlet->spawn_file};
        for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++)
            sum += check_text(texts[k], GL_MONITOR_MAX_STRING_BYTES);
    }
    /* Keeps the reads from being optimized away. */
    volatile uint64_t sink = sum;
    (void)sink;
    through_gltop(data, size, snapshot);
    gl_monitor_snapshot_free(snapshot);
    return 0;
}
