/*
 * engine.h -- the engine's private inside: the greenlet and thread records,
 * and the gl__ functions that the files of src/ and arch/ share.
 *
 * Field order matters in two places: the switch path touches the first
 * fields of struct gl_greenlet, so they share a cache line; and the
 * assembly in arch/ relies on nothing here but the C prototypes at the end
 * (it receives the thread record as an opaque pointer).
 *
 * Concurrency: a thread's records change without locks, only in that thread,
 * inside `switch_sequence` updates (odd while a switch is under way); other
 * threads read them under the sequence count. The lists of threads and
 * records, reference counts, and freeing of records are guarded by the
 * registry lock.
 */
#ifndef GL_ENGINE_INTERNAL_H
#define GL_ENGINE_INTERNAL_H

#include "glengine.h"

#include <stdatomic.h>
#include <stdint.h>

#define GL_HIDDEN __attribute__((visibility("hidden")))
#define GL_LIKELY(x) __builtin_expect(!!(x), 1)
#define GL_UNLIKELY(x) __builtin_expect(!!(x), 0)

typedef struct gl__thread gl__thread;

struct gl_greenlet {
    /* Switch path. The greenlet's stack is [stack_pointer, stack_stop);
     * [stack_pointer, stack_pointer + saved_bytes) of it sits in heap_copy,
     * the rest is live on the thread's stack. */
    char *stack_pointer;
    char *stack_stop;
    char *heap_copy;
    size_t saved_bytes;
    size_t heap_capacity;     /* allocated size of heap_copy, >= saved_bytes;
                                 kept between saves (stack_slices.c) */
    /* The next greenlet up the stack (at higher addresses) that may still
     * have live bytes there. Followed only from the running greenlet, whose
     * chain of these links names every greenlet with live bytes, nearest
     * first. */
    gl_greenlet *live_above;
    gl__thread *thread;
    gl_state state;
    int is_main;
    uint64_t switches;
    uint64_t last_ran_serial;
    size_t saved_bytes_peak;
    gl_message *reply_to;     /* while suspended: where its reply goes */

    /* Set once, or rarely. */
    gl_greenlet *parent;
    gl_run_function *run;
    void *argument;
    void *binding;
    uint64_t id;
    uint64_t created_ns;
    void *sanitizer_fake_stack; /* ASan's use-after-return stack, if any */
    /* During a save: a block reserved to replace heap_copy, adopted when
     * the bytes are copied (stack_slices.c), so that a failure elsewhere
     * changes nothing. */
    char *new_copy;
    size_t new_capacity;

    /* Registry; guarded by the registry lock. `references`: one for the
     * owner's handle (for a main greenlet: its thread) and one per greenlet
     * whose parent this is. */
    size_t references;
    gl_greenlet *thread_prev, *thread_next;
};

struct gl__thread {
    gl_greenlet *current;
    gl_greenlet *target;        /* during a switch: where to */
    gl_greenlet *origin;        /* during a switch: where from */
    int origin_finished;        /* during a switch: the origin's run returned */
    gl_message transfer;        /* the message in flight */
    uint64_t switch_serial;
    size_t saved_bytes;         /* sum over the thread's greenlets */
    size_t saved_bytes_peak;
    atomic_uint_fast64_t switch_sequence; /* odd while records change */

    /* The thread's C stack, as the threads library reports it (0 if not). */
    char *stack_low, *stack_high;
    /* Lowest stack pointer any switch of this thread has seen: below it no
     * suspended frame ever lay (kept in ASan builds only, to clear stale
     * poison; see sanitizers.h). */
    char *deepest_switch_pointer;

    uint64_t serial;
    int64_t os_id;
    int exited;

    /* Registry; guarded by the registry lock. `references`: one per record
     * of the thread plus one while the thread lives. */
    size_t references;
    gl_greenlet *first_greenlet;
    gl__thread *registry_prev, *registry_next;

    gl_greenlet main_greenlet;
};

/* ---- memory.c: the allocator hook */
GL_HIDDEN void *gl__allocate(size_t size);
GL_HIDDEN void *gl__reallocate(void *memory, size_t size);
GL_HIDDEN void gl__release(void *memory);
/* Zeroes `bytes` of memory and releases it: for what held stack bytes or
 * stack addresses (heap copies, records), which the hazard audit would
 * otherwise find again in memory reused by an allocation that does not
 * overwrite all of it (inspect/hazard_scan.c). */
GL_HIDDEN void gl__release_scrubbed(void *memory, size_t bytes);

/* ---- threads.c */
/* The calling thread's record, created with its main greenlet on first use;
 * NULL only if that allocation failed. */
GL_HIDDEN gl__thread *gl__thread_slow(void);
extern __thread gl__thread *gl__this_thread_record
    __attribute__((tls_model("initial-exec"))) GL_HIDDEN;
static inline gl__thread *gl__this_thread(void)
{
    gl__thread *thread = gl__this_thread_record;
    return GL_LIKELY(thread != NULL) ? thread : gl__thread_slow();
}
GL_HIDDEN uint64_t gl__monotonic_ns(void);

/* ---- registry.c */
GL_HIDDEN void gl__registry_lock(void);
GL_HIDDEN void gl__registry_unlock(void);
/* In a child after fork(): a fresh lock, held by the caller. */
GL_HIDDEN void gl__registry_reset_lock(void);
/* Under the registry lock. */
GL_HIDDEN gl__thread *gl__registry_first_thread(void);
/* Under the registry lock. */
GL_HIDDEN void gl__registry_add_thread(gl__thread *thread);
GL_HIDDEN void gl__registry_add_greenlet(gl_greenlet *greenlet);
/* Moves a record that never ran to another thread's list. */
GL_HIDDEN void gl__registry_move_greenlet(gl_greenlet *greenlet,
                                          gl__thread *thread);
/* Drops one reference to the record; frees it (and drops what it holds on
 * its parent and thread) when none remain. Under the registry lock. */
GL_HIDDEN void gl__greenlet_unreference(gl_greenlet *greenlet);
GL_HIDDEN void gl__thread_unreference(gl__thread *thread);
/* Sequence-count brackets around changes of a thread's records. Only the
 * owning thread writes the count, so plain stores do (a locked add would
 * cost more than the rest of a short switch); the fence keeps the odd value
 * ahead of the changes, the release store keeps it behind them. */
static inline void gl__records_change_begin(gl__thread *thread)
{
    uint_fast64_t sequence =
        atomic_load_explicit(&thread->switch_sequence, memory_order_relaxed);
    atomic_store_explicit(&thread->switch_sequence, sequence + 1,
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}
static inline void gl__records_change_end(gl__thread *thread)
{
    uint_fast64_t sequence =
        atomic_load_explicit(&thread->switch_sequence, memory_order_relaxed);
    atomic_store_explicit(&thread->switch_sequence, sequence + 1,
                          memory_order_release);
}

/* ---- stack_slices.c */
/* Frees the heap copy of a greenlet that will never run again, and takes
 * it out of the running greenlet's chain of live stacks. */
GL_HIDDEN void gl__stack_discard(gl__thread *thread, gl_greenlet *greenlet);
/* In a greenlet that has just got the stack, with its bytes back: runs the
 * runtime's restore_state and observe hooks. */
GL_HIDDEN void gl__arrive(gl__thread *thread);

/* ---- monitor.c: the monitor segment's life */
enum gl__monitor_states {
    GL__MONITOR_NOT_STARTED = 0, /* no greenlet created yet (or since fork) */
    GL__MONITOR_RUNNING = 1,
    GL__MONITOR_OFF = 2          /* turned off, or it could not be made */
};
extern atomic_int gl__monitor_state GL_HIDDEN;
GL_HIDDEN void gl__monitor_start_slow(void);
/* On greenlet creation: a load and a branch once the monitor runs. */
static inline void gl__monitor_start(void)
{
    if (GL_UNLIKELY(atomic_load_explicit(&gl__monitor_state,
                                         memory_order_relaxed) ==
                    GL__MONITOR_NOT_STARTED))
        gl__monitor_start_slow();
}
/* Around fork() (threads.c's handlers): the monitor's locks are held
 * across it, and the child forgets the parent's segment, so that the
 * child's next greenlet makes its own. */
GL_HIDDEN void gl__monitor_before_fork(void);
GL_HIDDEN void gl__monitor_after_fork_in_parent(void);
GL_HIDDEN void gl__monitor_after_fork_in_child(void);

/* ---- the switch protocol between C and arch/ */

/* What the save step tells the assembly to do next. */
enum gl__switch_action {
    GL__SWITCH_MOVE = 0,  /* move the stack pointer to `stack_pointer`,
                             call gl__switch_refill, gl__switch_arrive,
                             return 0 */
    GL__SWITCH_START = 1  /* call gl__greenlet_trampoline on this stack */
    /* negative: an error code to return without moving */
};
typedef struct gl__switch_step {
    char *stack_pointer;
    intptr_t action;
} gl__switch_step;

/* arch/: saves the callee-saved registers and FP control state of the
 * running greenlet on its stack, calls the save step, and then moves to,
 * restores and returns into thread->target, or starts it. Returns 0 when
 * the caller is resumed, or the save step's error code. */
GL_HIDDEN int gl__stack_switch(gl__thread *thread);
/* The address where a suspended greenlet's switch frame stands for
 * unwinders: inside gl__stack_switch, where the frame is complete. */
extern const void *const gl__switch_suspended_ip GL_HIDDEN;

/* Called by arch/ code only. */
GL_HIDDEN gl__switch_step gl__switch_save(gl__thread *thread,
                                          char *stack_pointer);
/* Copies the target's saved bytes back to the stack, except the switch
 * frame when that lies whole in its heap copy: returns where the frame is
 * (the target's stack pointer, or its heap copy). The assembly takes the
 * registers from there (x86-64) or copies the frame into place word by
 * word (aarch64). Registers read back at once from memory that memcpy has
 * just written with wide stores wait for those stores (no store
 * forwarding): 1 to 3 ns of a 13 ns switch on x86-64. */
GL_HIDDEN const char *gl__switch_refill(gl__thread *thread);
/* The size of the switch frame of arch/ (see the diagram there). */
#if defined(__x86_64__)
#define GL__SWITCH_FRAME_BYTES 64
#elif defined(__aarch64__)
#define GL__SWITCH_FRAME_BYTES 176
#endif
GL_HIDDEN void gl__switch_arrive(gl__thread *thread);
GL_HIDDEN __attribute__((noreturn)) void gl__greenlet_begin(gl__thread *thread);

#endif /* GL_ENGINE_INTERNAL_H */
