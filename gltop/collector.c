/*
 * collector.c -- gltop's collector (collector.h).
 *
 * Busy shares: a thread's CPU time is read right after each publication is
 * copied, and compared with the reading of the previous sample; the share
 * is the CPU time used over the wall time between the two readings. A
 * thread seen for the first time has no share yet.
 */
#define _GNU_SOURCE
#include "collector.h"
#include "monitor_layout.h"
#include "proc_files.h"

#include <stdlib.h>
#include <time.h>

uint64_t gltop_monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

int gltop_collector_open(gltop_collector *collector, int64_t pid)
{
    *collector = (gltop_collector){.pid = pid};
    gltop_read_command(pid, collector->command, sizeof collector->command);
    return gl_monitor_open(&collector->reader, pid);
}

void gltop_collector_close(gltop_collector *collector)
{
    gl_monitor_close(collector->reader);
    free(collector->marks);
    *collector = (gltop_collector){.pid = collector->pid};
}

static const struct gltop_cpu_mark *
find_mark(const gltop_collector *collector, int64_t os_id)
{
    for (size_t i = 0; i < collector->mark_count; i++)
        if (collector->marks[i].os_id == os_id)
            return &collector->marks[i];
    return NULL;
}

/* Reads the CPU time of the snapshot's threads, fills busy[] (one per
 * thread, -1 unknown) and keeps the readings as the new marks. */
static int measure_threads(gltop_collector *collector,
                           const gl_monitor_snapshot *s, double *busy)
{
    struct gltop_cpu_mark *marks = malloc((s->thread_count + 1) *
                                          sizeof *marks);
    if (!marks)
        return GL_ENOMEM;
    uint64_t now = gltop_monotonic_ns();
    double seconds = collector->marked_ns && now > collector->marked_ns
                         ? (double)(now - collector->marked_ns) / 1e9
                         : 0;
    size_t count = 0;
    for (size_t i = 0; i < s->thread_count; i++) {
        const gl_monitor_thread_view *t = &s->threads[i];
        uint64_t cpu;
        busy[i] = -1;
        /* In another pid namespace, the segment's ids are not ours. */
        int64_t tid = s->pid == collector->pid
                          ? t->os_id
                          : gltop_outer_tid(collector->pid, t->os_id);
        if (t->exited || tid < 0 ||
            gltop_read_thread_cpu(collector->pid, tid, &cpu) != 0)
            continue;
        const struct gltop_cpu_mark *before = find_mark(collector, t->os_id);
        if (before && seconds > 0 && cpu >= before->cpu_ns)
            busy[i] = (double)(cpu - before->cpu_ns) / 1e9 / seconds;
        marks[count++] = (struct gltop_cpu_mark){t->os_id, cpu};
    }
    free(collector->marks);
    collector->marks = marks;
    collector->mark_count = count;
    collector->marked_ns = now;
    return 0;
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
    const gl_monitor_snapshot *shown = gltop_model_snapshot(model);
    if (freshness && shown && shown->publications == snapshot->publications) {
        /* Nothing new: the model keeps its rates rather than see a
         * sample with no time between. */
        gl_monitor_snapshot_free(snapshot);
        return 0;
    }
    double *busy = malloc((snapshot->thread_count + 1) * sizeof *busy);
    if (!busy || measure_threads(collector, snapshot, busy) != 0) {
        free(busy);
        gl_monitor_snapshot_free(snapshot);
        return GL_ENOMEM;
    }
    /* The publication's own clock: rates are switches over the time
     * between two publications, not between two reads. */
    error = gltop_model_update(model, snapshot, snapshot->published_ns, busy);
    free(busy);
    return error;
}

int gltop_collector_stacks(gltop_collector *collector, uint64_t id,
                           int timeout_ms, char **text, int *status)
{
    size_t size;
    return gl_monitor_request(collector->reader, id,
                              GL_MONITOR_REQUEST_PYTHON_STACK |
                                  GL_MONITOR_REQUEST_NATIVE_STACK,
                              timeout_ms, text, &size, status);
}

const char *gltop_collector_ended(int error)
{
    switch (error) {
    case GL_ENOPROCESS:
        return "has exited";
    case GL_ENOMONITOR: /* its pid lives on, its segment does not */
        return "no longer publishes a segment (it ran exec, or closed it)";
    default:
        return NULL;
    }
}

int gltop_collector_audit(gltop_collector *collector, int timeout_ms,
                          char **text, int *status)
{
    size_t size;
    return gl_monitor_request(collector->reader, 0, GL_MONITOR_REQUEST_AUDIT,
                              timeout_ms, text, &size, status);
}
