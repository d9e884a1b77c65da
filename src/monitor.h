/*
 * monitor.h -- what the two files of the monitor's writer share: the
 * process's segment (a shared mapping of its memfd) and the step that
 * writes one publication into it. monitor.c owns the segment's life and
 * the thread that publishes; monitor_publication.c builds publications.
 * Only the monitor's thread touches the segment after it is made.
 */
#ifndef GL_MONITOR_H
#define GL_MONITOR_H

#include "engine.h"
#include "monitor_layout.h"

/* The writer's own copy of what it has written: any process of the same
 * user can write anything into the segment, so nothing but the reader
 * area is ever read back from it. */
typedef struct gl__monitor_segment {
    int fd;
    gl_monitor_header *header; /* the mapping, of `size` bytes */
    size_t size;               /* the mapping's and the file's size */
    size_t answer_offset;      /* publications start after the answers */
    uint64_t publish_sequence;
    uint64_t answer_sequence;
    uint64_t publications;
} gl__monitor_segment;

/* Makes the file and the mapping at least `size` bytes: GL_ENOMEM if the
 * kernel refuses (the segment is then unchanged). */
GL_HIDDEN int gl__monitor_segment_reserve(gl__monitor_segment *segment,
                                          size_t size);

/* Takes a copy of the registry (described by `runtime` when it is not
 * NULL and lets itself be entered) and writes it into the segment under
 * the publish sequence, stamped with the time the copy began. GL_ENOMEM
 * when memory ran out: nothing written. */
GL_HIDDEN int gl__monitor_publish(gl__monitor_segment *segment,
                                  const gl_monitor_runtime *runtime);

/* Taken while the segment's mapping changes (growth, publication,
 * answers) and across fork(), so that a child never sees it half done. */
GL_HIDDEN void gl__monitor_segment_lock(void);
GL_HIDDEN void gl__monitor_segment_unlock(void);

/* CLOCK_MONOTONIC in nanoseconds (precise: readers compare it with their
 * own clock). */
GL_HIDDEN uint64_t gl__monitor_clock_ns(void);

#endif /* GL_MONITOR_H */
