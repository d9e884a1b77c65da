/*
 * glmonitor.h -- reading the monitor segments of other processes: the
 * library behind gltop and `python -m greenlet.inspect PID`.
 *
 * A process that uses the engine publishes its greenlets in a memfd named
 * "greenlet-monitor" (layout: src/monitor_layout.h, docs/monitor.md). This
 * library finds such processes, attaches to one (which makes it publish),
 * copies its segment and turns the copy into plain C data, and asks it for
 * the full stacks of one greenlet.
 *
 * The segment is untrusted input: another process writes it while we read,
 * and any process of the same user may write anything into it. Nothing in
 * here maps it for reading; every read is a pread() into our own memory,
 * and every size, offset, count and string of the copy is checked before
 * use. A corrupt segment is reported as GL_ECORRUPT, never followed.
 *
 * Errors are the engine's GL_E* codes (glengine.h), among them those
 * specific to monitoring: GL_ENOPROCESS, GL_ENOMONITOR, GL_EPERM,
 * GL_EVERSION, GL_ECORRUPT, GL_ETIMEDOUT.
 */
#ifndef GLMONITOR_H
#define GLMONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "glengine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits that keep a hostile segment from costing unbounded memory. */
#define GL_MONITOR_MAX_SEGMENT_BYTES (256u << 20)
#define GL_MONITOR_MAX_STRING_BYTES 4096u

/* One thread of a snapshot. Strings are NUL-terminated copies, never NULL
 * ("" when absent), with control characters replaced by '?'. */
typedef struct gl_monitor_thread_view {
    uint64_t serial;
    int64_t os_id;
    int exited;
    uint64_t switches;
    uint64_t current_id;
    uint64_t saved_bytes;
    uint64_t saved_bytes_peak;
    uint64_t greenlets;
    const char *name;
} gl_monitor_thread_view;

typedef struct gl_monitor_greenlet_view {
    uint64_t id;
    uint64_t parent_id;
    uint64_t thread_serial;
    gl_state state;           /* checked: one of the four */
    int is_main;
    int has_place;
    int has_spawn_site;
    int has_hazard;           /* GL_MONITOR_GREENLET_HAZARD */
    uint64_t stack_pointer;
    uint64_t stack_stop;
    uint64_t saved_bytes;
    uint64_t saved_bytes_peak;
    uint64_t switches;
    uint64_t created_ns;
    uint64_t last_ran_serial;
    unsigned line;
    unsigned spawn_line;
    const char *name;
    const char *function;
    const char *file;
    const char *spawn_function;
    const char *spawn_file;
} gl_monitor_greenlet_view;

/* A whole, validated publication. One allocation: free it with
 * gl_monitor_snapshot_free(). */
typedef struct gl_monitor_snapshot {
    int64_t pid;               /* as the publisher wrote it */
    char runtime[49];
    int has_places;            /* a runtime filled in places */
    uint64_t publications;
    uint64_t published_ns;     /* CLOCK_MONOTONIC of the publication */
    uint64_t process_saved_bytes;
    size_t thread_count;
    gl_monitor_thread_view *threads;
    size_t greenlet_count;
    gl_monitor_greenlet_view *greenlets;
} gl_monitor_snapshot;

/* Turns a copied segment image into a snapshot, checking everything:
 * magic, version, sizes, offsets, counts, string references, states.
 * Errors: GL_ENOMONITOR (no magic: not a monitor segment), GL_EVERSION,
 * GL_ECORRUPT (also for a publication caught while being written, whose
 * sequence is odd), GL_ENOMEM, GL_EINVAL (out NULL, or image NULL with a
 * size). Pure: the fuzz target drives it. Records larger than version 1's
 * are read by their known prefix; strings of all records together may
 * take at most GL_MONITOR_MAX_SEGMENT_BYTES (else GL_ECORRUPT). */
GL_EXPORT int gl_monitor_parse(const void *image, size_t size,
                               gl_monitor_snapshot **out);
GL_EXPORT void gl_monitor_snapshot_free(gl_monitor_snapshot *snapshot);

/* The pids of the processes whose segments this process can see, in
 * increasing order: at most `capacity` of them in `pids`, and how many
 * there are in *count (which may exceed capacity). Processes that we may
 * not look into are left out. Errors: GL_ENOMEM, GL_EINVAL (count NULL,
 * or pids NULL with a capacity). */
GL_EXPORT int gl_monitor_find_processes(int64_t *pids, size_t capacity,
                                        size_t *count);

typedef struct gl_monitor_reader gl_monitor_reader;

/* Opens the segment of process `pid` (the first one found if it has
 * several). Errors: GL_ENOPROCESS, GL_ENOMONITOR (the process publishes
 * none), GL_EPERM (it belongs to another user), GL_EVERSION, GL_ECORRUPT,
 * GL_ENOMEM. */
GL_EXPORT int gl_monitor_open(gl_monitor_reader **out, int64_t pid);
GL_EXPORT void gl_monitor_close(gl_monitor_reader *reader);

/* Attaches: tells the process a reader is looking (heartbeat and wake),
 * which makes it publish now and then every GL_MONITOR_REFRESH_MS while
 * readers keep attaching at least every GL_MONITOR_READER_TIMEOUT_MS.
 * Errors: GL_EPERM (the segment could be opened read-only only),
 * GL_ENOPROCESS, GL_ECORRUPT (the file is shorter than a header). */
GL_EXPORT int gl_monitor_attach(gl_monitor_reader *reader);

/* Copies the segment and parses it (gl_monitor_parse), retrying while the
 * process is in the middle of a publication. With `fresh_within_ms` > 0,
 * attaches first and waits up to that long for a publication made after
 * the attach; if none comes, returns the last one and GL_ETIMEDOUT in
 * *freshness (0 when fresh; `freshness` may be NULL). Errors: those of
 * gl_monitor_parse, GL_ENOPROCESS (the process is gone), GL_ENOMONITOR
 * (it no longer holds the segment: it ran exec, say), GL_ETIMEDOUT (no
 * whole publication at all within the time, or none ever: a segment is
 * made empty and first published when a reader attaches). A reader that may not
 * attach (read-only) still waits: other readers may make it publish. */
GL_EXPORT int gl_monitor_read(gl_monitor_reader *reader, int fresh_within_ms,
                              int *freshness, gl_monitor_snapshot **out);

/* Asks for the stacks of one greenlet, or for the hazard audit of the
 * whole process (GL_MONITOR_REQUEST_* kinds), and
 * waits up to timeout_ms for the answer. On success *text (free() it) is
 * the answer text, NUL-terminated, of *size bytes, in the line format of
 * monitor_layout.h (control characters but tab and newline replaced by
 * '?'), and *status the answer's status. Errors: GL_EINVAL (kinds 0 or
 * unknown, timeout_ms <= 0), GL_ETIMEDOUT, GL_ENOPROCESS, GL_ECORRUPT,
 * GL_ENOMEM, GL_EPERM (as gl_monitor_attach). */
GL_EXPORT int gl_monitor_request(gl_monitor_reader *reader,
                                 uint64_t greenlet_id, unsigned kinds,
                                 int timeout_ms, char **text, size_t *size,
                                 int *status);

#ifdef __cplusplus
}
#endif
#endif /* GLMONITOR_H */
