/*
 * model.h -- gltop's model: what the screen shows, computed from monitor
 * snapshots (inspect/glmonitor.h) without any terminal. It keeps the
 * latest snapshot and the one before, and turns them into rows: in tree
 * order (each greenlet under its parent, children by id) or flat, sorted
 * by a column, filtered by text, with rates (switches per second) and the
 * time since each greenlet last ran, both from the difference between two
 * samples. It also flags rows: B for a running greenlet that has kept its
 * thread busy without a switch for longer than a threshold (blocking the
 * others of its thread), H for one the hazard audit flagged in the
 * segment. The view only draws rows; the collector only makes snapshots.
 * Cost: O(n log n) per update and per view change, for n greenlets.
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

/* Bits of gltop_row.flags. */
enum {
    GLTOP_FLAG_HAZARD = 1u,   /* H: its saved stack is referenced from
                                 outside the engine (the segment says so) */
    GLTOP_FLAG_BLOCKING = 2u  /* B: running, its thread busy on a CPU and
                                 without a switch for the threshold */
};

/* The default of gltop_model_set_block_threshold. */
#define GLTOP_BLOCK_THRESHOLD_NS 1000000000ull

/* One row of the screen. `greenlet` points into the model's current
 * snapshot and is valid until the next gltop_model_update. */
typedef struct gltop_row {
    const gl_monitor_greenlet_view *greenlet;
    unsigned depth;            /* tree depth; 0 in the flat view */
    double switches_per_second;/* < 0: unknown (first sample) */
    uint64_t idle_ns;          /* since it was last seen switching in;
                                  UINT64_MAX: not since gltop started */
    unsigned flags;            /* GLTOP_FLAG_* */
} gltop_row;

/* What the model knows of one thread of the snapshot. */
typedef struct gltop_thread_row {
    const gl_monitor_thread_view *thread;
    double switches_per_second;/* < 0: unknown */
    double busy;               /* share of a CPU it used since the sample
                                  before; < 0: unknown */
    uint64_t unswitched_ns;    /* how long its switch count has not
                                  changed (at least), as far as seen */
    int blocking;              /* its running greenlet is flagged B */
} gltop_thread_row;

typedef struct gltop_model gltop_model;

/* A new, empty model: tree view, sorted by id, no filter. GL_ENOMEM. */
int gltop_model_create(gltop_model **out);
void gltop_model_destroy(gltop_model *model);

/* Takes `snapshot` (the model frees it, now or later) sampled at
 * CLOCK_MONOTONIC `now_ns`, and rebuilds the rows. `thread_busy` (may be
 * NULL: unknown) gives, for each thread of the snapshot in its order, the
 * share of one CPU it used since the previous sample (< 0: unknown); a
 * thread is blocking when it has a running greenlet, has made no switch
 * for at least the threshold, and was busy at least half the time (a
 * thread asleep in a system call, a hub waiting for events, is not).
 * GL_ENOMEM leaves the model as it was (and frees the snapshot). */
int gltop_model_update(gltop_model *model, gl_monitor_snapshot *snapshot,
                       uint64_t now_ns, const double *thread_busy);

/* View settings; each rebuilds the rows. In the tree view, the sort
 * orders siblings; a filter keeps the rows whose name, function or file
 * contains `text` (NULL or "": all), and in the tree view their
 * ancestors too, so that the tree stays a tree. */
int gltop_model_set_tree(gltop_model *model, int tree);
int gltop_model_set_sort(gltop_model *model, gltop_column column,
                         int descending);
int gltop_model_set_filter(gltop_model *model, const char *text);
/* How long a busy thread may go without a switch before its running
 * greenlet is flagged B; takes effect at the next update. */
void gltop_model_set_block_threshold(gltop_model *model, uint64_t ns);

/* The settings, as set. */
int gltop_model_tree(const gltop_model *model);
gltop_column gltop_model_sort(const gltop_model *model, int *descending);
const char *gltop_model_filter(const gltop_model *model); /* "" for none */

size_t gltop_model_row_count(const gltop_model *model);
const gltop_row *gltop_model_row(const gltop_model *model, size_t index);
/* The current snapshot (NULL before the first update). */
const gl_monitor_snapshot *gltop_model_snapshot(const gltop_model *model);
/* Switches per second of the whole process between the last two samples,
 * or a negative number when unknown. */
double gltop_model_process_rate(const gltop_model *model);
/* How long no thread of the process has switched, as far as the samples
 * show: 0 when the last sample saw switches, UINT64_MAX before the second
 * sample. *at_least (may be NULL) is 1 when no switch has been seen since
 * gltop began: then the last one came before, and it is a lower bound. */
uint64_t gltop_model_since_last_switch(const gltop_model *model,
                                       int *at_least);
/* How long gltop has watched: from the first sample to the last. A row
 * whose idle time is unknown has been idle at least that long. */
uint64_t gltop_model_watched_ns(const gltop_model *model);
/* The threads of the current snapshot, in its order. */
size_t gltop_model_thread_count(const gltop_model *model);
const gltop_thread_row *gltop_model_thread(const gltop_model *model,
                                           size_t index);
/* The row of the greenlet with `id` among the rows shown, or SIZE_MAX. */
size_t gltop_model_find_row(const gltop_model *model, uint64_t id);
/* What a row of greenlet `id` would show (depth 0), whether the filter
 * shows it or not: 1, or 0 if the snapshot has no such greenlet. */
int gltop_model_greenlet(const gltop_model *model, uint64_t id,
                         gltop_row *out);

/* The process as a whole, from the current snapshot. */
typedef struct gltop_totals {
    uint64_t by_state[4];      /* greenlets per gl_state */
    uint64_t alive;            /* all but the dead */
    uint64_t heap;             /* stack bytes held on the heap now */
    uint64_t heap_peak_bound;  /* the sum of the threads' peaks: the
                                  process's peak with one thread, an upper
                                  bound with several (their peaks need not
                                  have come at once; the engine keeps no
                                  process-wide peak, which would cost every
                                  switch) */
    size_t blocking;           /* threads whose running greenlet is B */
} gltop_totals;
void gltop_model_totals(const gltop_model *model, gltop_totals *out);

#endif /* GLTOP_MODEL_H */
