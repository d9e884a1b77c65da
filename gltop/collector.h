/*
 * collector.h -- gltop's collector: it reads one process's monitor
 * segment (inspect/glmonitor.h) and the CPU time of its threads (/proc),
 * hands each sample to the model, and asks the process for the stacks of
 * one greenlet. It never includes curses; the batch mode and the screen
 * share it.
 */
#ifndef GLTOP_COLLECTOR_H
#define GLTOP_COLLECTOR_H

#include <stdint.h>

#include "model.h"

/* A thread's CPU time when it was last read. */
struct gltop_cpu_mark {
    int64_t os_id;
    uint64_t cpu_ns;
};

typedef struct gltop_collector {
    int64_t pid;
    gl_monitor_reader *reader;
    char command[256];          /* its command line, read at open */
    struct gltop_cpu_mark *marks;
    size_t mark_count;
    uint64_t marked_ns;         /* CLOCK_MONOTONIC of the marks */
} gltop_collector;

/* CLOCK_MONOTONIC now, in nanoseconds: gltop's one clock for the times
 * it measures itself (the publication's own clock is in the snapshot). */
uint64_t gltop_monotonic_ns(void);

/* Opens the segment of `pid`. The errors of gl_monitor_open. */
int gltop_collector_open(gltop_collector *collector, int64_t pid);
void gltop_collector_close(gltop_collector *collector);

/* Attaches, waits up to `fresh_within_ms` for a publication made after
 * that, and gives it to the model with the time it was taken and how busy
 * each thread has been since the previous sample. *fresh (may be NULL) is
 * 1 when it was, 0 when the process did not publish in time; then the
 * last publication is used if the model has not seen it, and the model is
 * left as it is if it has. The errors of gl_monitor_read and
 * gltop_model_update. */
int gltop_collector_sample(gltop_collector *collector, gltop_model *model,
                           int fresh_within_ms, int *fresh);

/* If `error` (of gltop_collector_sample) means that there is nothing
 * more to watch, how to say so after "pid N "; else NULL. */
const char *gltop_collector_ended(int error);

/* Asks the process for the Python and native stacks of greenlet `id`
 * (gl_monitor_request, both kinds). *text: free() it. */
int gltop_collector_stacks(gltop_collector *collector, uint64_t id,
                           int timeout_ms, char **text, int *status);
/* Asks the process to run the hazard audit (gl_monitor_request, kind
 * GL_MONITOR_REQUEST_AUDIT). *text: free() it. */
int gltop_collector_audit(gltop_collector *collector, int timeout_ms,
                          char **text, int *status);

#endif /* GLTOP_COLLECTOR_H */
