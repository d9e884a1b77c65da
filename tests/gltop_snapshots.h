/*
 * gltop_snapshots.h -- snapshots for gltop's tests without a process: a
 * one-thread publication described greenlet by greenlet, built as a
 * segment image and parsed as a reader would (gl_monitor_parse).
 */
#ifndef GL_TEST_GLTOP_SNAPSHOTS_H
#define GL_TEST_GLTOP_SNAPSHOTS_H

#include <stddef.h>
#include <stdint.h>

#include "glmonitor.h"

/* One greenlet of thread 1, which is running the RUNNING one. */
struct spec {
    uint64_t id, parent;
    uint32_t state;
    uint64_t switches, saved;
    const char *function;
    uint32_t flags; /* GL_MONITOR_GREENLET_* besides PLACE */
    uint64_t stack_pointer, stack_stop;
};

/* The snapshot of `n` greenlets; fails the test if it does not parse. */
gl_monitor_snapshot *snapshot_of(const struct spec *specs, size_t n);

#endif /* GL_TEST_GLTOP_SNAPSHOTS_H */
