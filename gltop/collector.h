/*
 * collector.h -- gltop's collector: it reads one process's monitor
 * segment (inspect/glmonitor.h) and hands each snapshot to the model.
 * It never includes curses; the batch mode and the screen share it.
 */
#ifndef GLTOP_COLLECTOR_H
#define GLTOP_COLLECTOR_H

#include <stdint.h>

#include "model.h"

typedef struct gltop_collector {
    int64_t pid;
    gl_monitor_reader *reader;
} gltop_collector;

/* Opens the segment of `pid`. The errors of gl_monitor_open. */
int gltop_collector_open(gltop_collector *collector, int64_t pid);
void gltop_collector_close(gltop_collector *collector);

/* Attaches, waits up to `fresh_within_ms` for a publication made after
 * that, and gives it to the model with the time it was taken. *fresh
 * (may be NULL) is 1 when it was, 0 when the process did not publish in
 * time and the last publication was used. The errors of gl_monitor_read
 * and gltop_model_update. */
int gltop_collector_sample(gltop_collector *collector, gltop_model *model,
                           int fresh_within_ms, int *fresh);

#endif /* GLTOP_COLLECTOR_H */
