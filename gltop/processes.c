/*
 * processes.c -- the picker's scan (processes.h). Each read attaches and
 * waits for a new publication, which a live process makes within a few
 * milliseconds of being woken; only a process that cannot publish (its
 * runtime busy, say a C call holding the GIL) costs the whole wait.
 */
#define _GNU_SOURCE
#include "processes.h"
#include "proc_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void summarize(gltop_process *p, const gl_monitor_snapshot *s)
{
    p->threads = s->thread_count;
    p->heap_bytes = s->process_saved_bytes;
    for (size_t i = 0; i < s->greenlet_count; i++)
        p->greenlets_alive += s->greenlets[i].state != GL_STATE_DEAD;
    snprintf(p->runtime, sizeof p->runtime, "%s", s->runtime);
}

int gltop_scan_processes(gltop_process **out, size_t *count, int wait_ms)
{
    *out = NULL;
    *count = 0;
    size_t capacity = 0, found = 0;
    int error = gl_monitor_find_processes(NULL, 0, &capacity);
    int64_t *pids = malloc((capacity + 1) * sizeof *pids);
    gltop_process *processes = calloc(capacity + 1, sizeof *processes);
    if (error || !pids || !processes ||
        (error = gl_monitor_find_processes(pids, capacity, &found)) != 0) {
        free(pids);
        free(processes);
        return error ? error : GL_ENOMEM;
    }
    if (found > capacity)
        found = capacity; /* new since the count: the next scan has them */
    size_t kept = 0;
    for (size_t i = 0; i < found; i++) {
        gltop_process *p = &processes[i];
        gl_monitor_reader *reader;
        p->pid = pids[i];
        p->error = gl_monitor_open(&reader, p->pid);
        if (!p->error) {
            gl_monitor_snapshot *snapshot;
            p->error = gl_monitor_read(reader, wait_ms, NULL, &snapshot);
            if (!p->error) {
                summarize(p, snapshot);
                gl_monitor_snapshot_free(snapshot);
            }
            gl_monitor_close(reader);
        }
        if (p->error == GL_ENOPROCESS)
            continue; /* gone since the scan */
        gltop_read_command(p->pid, p->command, sizeof p->command);
        processes[kept++] = *p;
    }
    free(pids);
    *out = processes;
    *count = kept;
    return 0;
}
