/*
 * glinspect.h -- the public face of inspection: looking at greenlets that
 * are not running, from the outside.
 *
 * Built on the engine's records (glengine.h). These functions read the
 * stack of a suspended greenlet as the greenlet itself would see it: the
 * part that is saved is served from its heap copy, the rest from the
 * thread's stack.
 *
 * Threads: for a greenlet of the calling thread they just work. For one of
 * another thread, the caller must keep that thread from switching during
 * the call (the CPython binding holds the GIL, without which no Python
 * greenlet switches); the functions themselves hold the registry lock
 * (gl_registry_call), so that the thread cannot exit and free the stack or
 * the heap copy meanwhile. Without that guarantee the bytes read may be
 * torn, or freed memory.
 */
#ifndef GLINSPECT_H
#define GLINSPECT_H

#include "glengine.h"

#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Copies `size` bytes at `address` as `greenlet` sees them into `buffer`.
 * The range must lie within the greenlet's stack, [stack_pointer,
 * stack_stop) of its record. Errors: GL_EINVAL (not suspended, or the range
 * is outside its stack). */
GL_EXPORT int gl_read_stack(const gl_greenlet *greenlet, uintptr_t address,
                            void *buffer, size_t size);

/* One frame of a native backtrace. `function` is empty when no symbol
 * covers the address; `object` is the shared object's path (or the
 * program's), empty when unknown. */
typedef struct gl_native_frame {
    uintptr_t ip;
    uintptr_t sp;          /* the frame's stack pointer: its locals are in
                              [sp, the next outer frame's sp) */
    uintptr_t offset;      /* ip - start of `function` */
    char function[128];
    char object[256];
} gl_native_frame;

/* Walks the C frames of a suspended greenlet with libunwind, innermost
 * first, from its switch frame down to its root, storing at most
 * `capacity` frames and their number in *count. Returns 1 if the walk
 * reached the greenlet's root cleanly, 0 if it stopped early (capacity
 * reached, or a frame the unwinder could not step past), or a negative
 * GL_E* code: GL_EINVAL (not suspended, or its stack range unknown),
 * GL_ENOMEM (libunwind could not set up). */
GL_EXPORT int gl_native_backtrace(const gl_greenlet *greenlet,
                                  gl_native_frame *frames, size_t capacity,
                                  size_t *count);

/* ------------------------------------------------------------ hazards */

/* Where a hazard's holder is. */
enum gl_hazard_place {
    GL_HAZARD_IN_OBJECT = 1,       /* the writable data of a loaded object */
    GL_HAZARD_IN_THREAD_STACK = 2, /* the live stack of another thread */
    GL_HAZARD_IN_HEAP = 3          /* anonymous memory: malloc's heap, say */
};

/* A word outside the engine that points into the stack of a suspended
 * greenlet, at an address whose bytes another greenlet of its thread has
 * taken (hazard_scan.c says why that is a hazard). */
typedef struct gl_hazard_hit {
    uintptr_t holder;          /* where the word is */
    uintptr_t target;          /* its value: an address in the region */
    uint64_t greenlet_id;      /* whose stack it points into */
    int64_t thread_os_id;      /* that greenlet's thread */
    uintptr_t region_low;      /* the part of its stack it points into: */
    uintptr_t region_high;
    int saved;                 /* 1: that part is saved (on the heap; the
                                  address is another greenlet's now);
                                  0: it is live, in place, but the address
                                  is in another greenlet's saved part, so
                                  that greenlet takes it when it resumes */
    int holder_kind;           /* enum gl_hazard_place */
    int64_t holder_thread_os_id; /* GL_HAZARD_IN_THREAD_STACK: its tid */
    uintptr_t allocation;      /* GL_HAZARD_IN_HEAP: the allocation holding
                                  the word, 0 if not known */
    size_t allocation_size;    /* its size in bytes */
    char object[256];          /* the object holding it, "" if unknown */
    char symbol[128];          /* its symbol covering the holder, or "" */
    uintptr_t symbol_offset;   /* holder - the symbol's address */
} gl_hazard_hit;

/* Says whether the word at `holder` is one the runtime keeps and handles
 * correctly (nonzero: not a hit). */
typedef int gl_hazard_known(uintptr_t holder, void *context);

/* Looks for words pointing into the saved part of a suspended greenlet of
 * any thread, in: the writable data of every loaded object; the live
 * stacks of the process's other threads that wait in system calls; and
 * anonymous memory -- glibc malloc's allocations in use (free chunks left
 * out), or whole mappings that are not malloc heaps -- but the engine's
 * own records and heap copies and the stacks of threads. *hits gets
 * *count hits, in scan order. The address alone cannot tell whose
 * data a word meant: saved parts of one thread's greenlets overlap when
 * they used the same addresses (started at the same depth), and the
 * greenlet whose bytes are in place there may be the one meant. A word
 * then gives a hit per candidate, in a row: every greenlet with that
 * address saved, and the one with it live. The caller keeps greenlets
 * from switching meanwhile (see gl_read_stack). `known` may be NULL.
 * *hits: gl_hazard_hits_free() it.
 * Errors: GL_EINVAL, GL_ENOMEM. */
GL_EXPORT int gl_hazard_scan(gl_hazard_known *known, void *context,
                             gl_hazard_hit **hits, size_t *count);

/* Frees the hits of gl_hazard_scan, zeroed first: their stack addresses,
 * left in memory that an allocation reuses without overwriting it all,
 * would be found by the next scan. Memory that held stack addresses
 * (frames of gl_native_backtrace, copies of records) is best zeroed
 * before it is freed for the same reason. */
GL_EXPORT void gl_hazard_hits_free(gl_hazard_hit *hits, size_t count);

/* ------------------------------------------------------------- watches */

/* Hardware write watchpoints on stack addresses kept outside their
 * greenlet (hazard_watch.c says how): each write through such an address
 * while its greenlet's bytes there are saved on the heap -- a write that
 * corrupts the greenlet using the address now, or is lost -- is recorded
 * with the writing thread and its backtrace. Linux perf events with
 * PERF_TYPE_BREAKPOINT, delivered as the real-time signal
 * GL_WATCH_SIGNAL to the writing thread; a handler installed there before
 * is called for signals that are not ours. */
#define GL_WATCH_MAX 4        /* addresses at once: debug registers */
#define GL_WATCH_FRAMES 32    /* frames kept per write */
#define GL_WATCH_WRITES 256   /* writes kept; later ones are counted */
#define GL_WATCH_SIGNAL (SIGRTMIN + 4)

/* Who wrote (writes of the greenlet that uses the address now, its own
 * frames most likely, are counted but not recorded). */
enum gl_watch_kind {
    GL_WATCH_FROM_ANOTHER_THREAD = 1, /* not the greenlet's thread */
    GL_WATCH_BY_HOLDER = 2            /* its thread, from the code of the
                                         object holding the pointer */
};

typedef struct gl_watch_write {
    uintptr_t address;        /* the watched address */
    uint64_t greenlet_id;     /* whose stack it is in */
    int64_t owner_thread;     /* that greenlet's thread */
    int64_t writer_thread;    /* the thread that wrote */
    int kind;                 /* enum gl_watch_kind */
    int saved;                /* 1: the greenlet's bytes there were saved */
    uint64_t time_ns;         /* CLOCK_MONOTONIC */
    size_t frame_count;
    uintptr_t ips[GL_WATCH_FRAMES]; /* the writer's frames, innermost
                                       first: ips[0] follows the store */
    uintptr_t sps[GL_WATCH_FRAMES];
    int complete;             /* internal: the record is whole */
} gl_watch_write;

typedef struct gl_watch_info {
    uintptr_t address;
    uint64_t greenlet_id;
    int64_t owner_thread;
    int armed;                /* its greenlet's bytes there are saved now */
    uint64_t own_writes;      /* writes by the greenlet using it, counted */
    int own_given_up;         /* too many of those: its thread no longer
                                 trapped */
} gl_watch_info;

/* Watches `address` in `greenlet`'s stack whenever it is saved, in every
 * thread that exists now. `holder_object` (may be NULL) is the path of
 * the object whose code keeps the pointer: writes from its code in the
 * greenlet's own thread are recorded too. The caller keeps the greenlet's
 * record alive while watched. Errors: GL_EINVAL, GL_EDEAD, GL_ENOSPC (all
 * GL_WATCH_MAX in use), GL_EUNAVAILABLE (perf events or breakpoints not
 * available: gl_watch_unavailable() says why). Watching an address
 * already watched for that greenlet is not an error. */
GL_EXPORT int gl_watch_add(uintptr_t address, const gl_greenlet *greenlet,
                           const char *holder_object);
/* Stops watching `address` in `greenlet`'s stack (greenlets that started
 * at the same depth share addresses: theirs stay). */
GL_EXPORT void gl_watch_remove(uintptr_t address, const gl_greenlet *greenlet);
/* Stops every watch. Recorded writes stay. */
GL_EXPORT void gl_watch_clear(void);
/* Nonzero while any watch exists: cheap, for the switch path. */
GL_EXPORT int gl_watch_active(void);
/* Arms each watch whose greenlet's bytes at its address are saved now,
 * disarms the others, and drops those whose greenlet died. A runtime
 * calls it after switches while gl_watch_active(). */
GL_EXPORT void gl_watch_refresh(void);
/* The watches now, at most `capacity`; returns how many. */
GL_EXPORT size_t gl_watch_list(gl_watch_info *out, size_t capacity);
/* The writes recorded so far, oldest first, at most `capacity`; returns
 * how many; *dropped (may be NULL): writes not kept for lack of room. */
GL_EXPORT size_t gl_watch_writes(gl_watch_write *out, size_t capacity,
                                 uint64_t *dropped);
/* Why watchpoints are not available, after GL_EUNAVAILABLE; "" before. */
GL_EXPORT const char *gl_watch_unavailable(void);

#ifdef __cplusplus
}
#endif
#endif /* GLINSPECT_H */
