/*
 * proc_files.h -- what gltop reads of a process from /proc besides its
 * monitor segment: its command line, and the CPU time of its threads
 * (from which the model tells a busy thread from one asleep in a system
 * call, for the B flag).
 */
#ifndef GLTOP_PROC_FILES_H
#define GLTOP_PROC_FILES_H

#include <stddef.h>
#include <stdint.h>

/* The command line of `pid`, arguments joined by spaces, control
 * characters replaced by spaces, cut to fit `size`; "?" when unreadable. */
void gltop_read_command(int64_t pid, char *out, size_t size);

/* User plus system CPU time of thread `tid` of `pid`, in nanoseconds.
 * Returns 0, or -1 when the thread is gone or its stat unreadable. */
int gltop_read_thread_cpu(int64_t pid, int64_t tid, uint64_t *cpu_ns);

/* The tid, as gltop sees it, of the thread that is `inner_tid` in the
 * pid namespace of process `pid` (a container's: the segment holds the
 * ids the process sees). -1 if no thread of `pid` has that id. Cost: one
 * read per thread of the process. */
int64_t gltop_outer_tid(int64_t pid, int64_t inner_tid);

#endif /* GLTOP_PROC_FILES_H */
