/*
 * processes.h -- the process picker's data: every process that publishes
 * a monitor segment this user may read, with a summary of its greenlets,
 * or why it could not be read. No curses here.
 */
#ifndef GLTOP_PROCESSES_H
#define GLTOP_PROCESSES_H

#include <stddef.h>
#include <stdint.h>

#include "glmonitor.h"

typedef struct gltop_process {
    int64_t pid;
    int error;                 /* 0, or why it could not be read (GL_E*) */
    size_t threads;
    uint64_t greenlets_alive;
    uint64_t heap_bytes;
    char runtime[49];
    char command[256];
} gltop_process;

/* Finds the processes, attaches to each in turn, waits up to `wait_ms`
 * for it to publish, and summarizes them, by pid. Processes
 * that exit meanwhile are left out. *out: free() it. Errors: GL_ENOMEM. */
int gltop_scan_processes(gltop_process **out, size_t *count, int wait_ms);

#endif /* GLTOP_PROCESSES_H */
