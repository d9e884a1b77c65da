/*
 * model.h -- gltop's model: what the screen shows, computed from monitor
 * snapshots (inspect/glmonitor.h) without any terminal. It keeps the
 * latest snapshot and the one before, and turns them into rows: in tree
 * order (each greenlet under its parent, children by id) or flat, sorted
 * by a column, filtered by text, with rates (switches per second) and the
 * time since each greenlet last ran, both from the difference between two
 * samples. The view (still to come) only draws rows; the collector only
 * makes snapshots. Cost: O(n log n) per update and per view change, for n
 * greenlets.
 */
#ifndef GLTOP_MODEL_H
#define GLTOP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "glmonitor.h"

typedef enum gltop_column {
    GLTOP_COLUMN_ID = 0,
    GLTOP_COLUMN_STATE,
    GLTOP_COLUMN_THREAD,
    GLTOP_COLUMN_HEAP,
    GLTOP_COLUMN_PEAK,
    GLTOP_COLUMN_RATE,
    GLTOP_COLUMN_IDLE,
    GLTOP_COLUMN_WHERE,
    GLTOP_COLUMNS
} gltop_column;

/* One row of the screen. `greenlet` points into the model's current
 * snapshot and is valid until the next gltop_model_update. */
typedef struct gltop_row {
    const gl_monitor_greenlet_view *greenlet;
    unsigned depth;            /* tree depth; 0 in the flat view */
    double switches_per_second;/* < 0: unknown (first sample) */
    uint64_t idle_ns;          /* since it was last seen switching in;
                                  UINT64_MAX: not since gltop started */
} gltop_row;

typedef struct gltop_model gltop_model;

/* A new, empty model: tree view, sorted by id, no filter. GL_ENOMEM. */
int gltop_model_create(gltop_model **out);
void gltop_model_destroy(gltop_model *model);

/* Takes `snapshot` (the model frees it, now or later) sampled at
 * CLOCK_MONOTONIC `now_ns`, and rebuilds the rows. GL_ENOMEM leaves the
 * model as it was (and frees the snapshot). */
int gltop_model_update(gltop_model *model, gl_monitor_snapshot *snapshot,
                       uint64_t now_ns);

/* View settings; each rebuilds the rows. In the tree view, the sort
 * orders siblings; a filter keeps the rows whose name, function or file
 * contains `text` (NULL or "": all), and in the tree view their
 * ancestors too, so that the tree stays a tree. */
int gltop_model_set_tree(gltop_model *model, int tree);
int gltop_model_set_sort(gltop_model *model, gltop_column column,
                         int descending);
int gltop_model_set_filter(gltop_model *model, const char *text);

size_t gltop_model_row_count(const gltop_model *model);
const gltop_row *gltop_model_row(const gltop_model *model, size_t index);
/* The current snapshot (NULL before the first update). */
const gl_monitor_snapshot *gltop_model_snapshot(const gltop_model *model);
/* Switches per second of the whole process between the last two samples,
 * or a negative number when unknown. */
double gltop_model_process_rate(const gltop_model *model);

#endif /* GLTOP_MODEL_H */
