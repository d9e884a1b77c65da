/*
 * collector.c -- gltop's collector (collector.h).
 */
#include "collector.h"

int gltop_collector_open(gltop_collector *collector, int64_t pid)
{
    collector->pid = pid;
    collector->reader = NULL;
    return gl_monitor_open(&collector->reader, pid);
}

void gltop_collector_close(gltop_collector *collector)
{
    gl_monitor_close(collector->reader);
    collector->reader = NULL;
}

int gltop_collector_sample(gltop_collector *collector, gltop_model *model,
                           int fresh_within_ms, int *fresh)
{
    gl_monitor_snapshot *snapshot;
    int freshness = 0;
    int error = gl_monitor_read(collector->reader, fresh_within_ms,
                                &freshness, &snapshot);
    if (error)
        return error;
    if (fresh)
        *fresh = freshness == 0;
    /* The publication's own clock: rates are switches over the time
     * between two publications, not between two reads. */
    return gltop_model_update(model, snapshot, snapshot->published_ns);
}
