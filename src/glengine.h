/*
 * glengine.h -- the public face of the greenlet switching engine.
 *
 * A greenlet is a coroutine that runs on the C stack of the thread that
 * created it. Switching copies slices of that one stack to the heap and back
 * (see docs/engine.md for the algorithm), so greenlets cost no address space
 * of their own and can grow as deep as the thread's stack allows. The engine
 * knows nothing about any language: a runtime above it (the CPython binding,
 * or a plain C program) plugs its per-greenlet state in through hooks.
 *
 * Every greenlet is a record with a 64-bit id that is never reused, and every
 * record is reachable from a process-wide registry that other threads may
 * walk (gl_registry_walk) while the greenlets run.
 *
 * Conventions (as in libuv): names starting with gl_ are public; functions
 * return 0 on success or a negative GL_E* code, whose name and message
 * gl_error_name() and gl_strerror() give; constructors hand their object back
 * through an out-parameter. The library never aborts and never prints.
 *
 * Threads: a greenlet belongs to the thread that created it and may be
 * switched to, killed and reparented only from that thread. Each thread gets
 * its own main greenlet, created on its first call into the engine, which
 * stands for the thread's original flow of control. When a thread exits, its
 * greenlets that started and never finished are marked dead and their heap
 * copies freed; greenlets that never started stay NEW (another thread may
 * adopt them, gl_set_parent); records stay valid until gl_destroy().
 */
#ifndef GLENGINE_H
#define GLENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GL_EXPORT __attribute__((visibility("default")))
#else
#define GL_EXPORT
#endif

/* ---------------------------------------------------------------- errors */

/* X(name, value, message): every error code the engine returns. */
#define GL_ERROR_TABLE(X)                                                     \
    X(GL_ENOMEM, -1, "out of memory")                                         \
    X(GL_EINVAL, -2, "invalid argument")                                      \
    X(GL_EDEAD, -3, "the greenlet is dead")                                   \
    X(GL_EWRONGTHREAD, -4, "the greenlet belongs to another thread")          \
    X(GL_ECYCLE, -5, "the new parent would make a cycle of parents")          \
    X(GL_EBUSY, -6, "the greenlet is running")                                \
    X(GL_ETHREADEXITED, -7, "the greenlet's thread has exited")              \
    X(GL_ENOPROCESS, -8, "no such process")                                   \
    X(GL_ENOMONITOR, -9, "the process publishes no greenlet monitor segment") \
    X(GL_EPERM, -10, "permission denied")                                     \
    X(GL_EVERSION, -11, "the monitor segment has another layout version")     \
    X(GL_ECORRUPT, -12, "the monitor segment is corrupt or truncated")        \
    X(GL_ETIMEDOUT, -13, "the process did not answer in time")              \
    X(GL_EUNAVAILABLE, -14, "not available on this system")                   \
    X(GL_ENOSPC, -15, "no room left (all slots in use)")

enum gl_error {
#define GL_ERROR_ENUM(name, value, message) name = value,
    GL_ERROR_TABLE(GL_ERROR_ENUM)
#undef GL_ERROR_ENUM
};

/* "GL_ENOMEM" for GL_ENOMEM; "GL_OK" for 0; "GL_EUNKNOWN" otherwise. */
GL_EXPORT const char *gl_error_name(int code);
/* A sentence for any code; "success" for 0. Never NULL. */
GL_EXPORT const char *gl_strerror(int code);

/* ------------------------------------------------------------- greenlets */

typedef struct gl_greenlet gl_greenlet;

typedef enum gl_state {
    GL_STATE_NEW = 0,       /* created, never switched to */
    GL_STATE_RUNNING = 1,   /* the current greenlet of its thread */
    GL_STATE_SUSPENDED = 2, /* started, switched away from */
    GL_STATE_DEAD = 3       /* its run function returned, or it was killed */
} gl_state;

/* What travels with a switch. The engine never looks at `value`; `thrown`
 * tells the receiver that the sender meant it as a throw (the runtime above
 * decides what a throw is: an exception, a cancellation...). */
typedef struct gl_message {
    void *value;
    int thrown;
} gl_message;

/* The body of a greenlet. `argument` is the one given to gl_create();
 * `first` is the message of the first switch into the greenlet. What it
 * returns is sent to its parent (or, if the parent is dead, the nearest live
 * ancestor), and the greenlet is dead from then on. */
typedef gl_message gl_run_function(void *argument, gl_message first);

/* Creates a greenlet in state NEW owned by the calling thread. `parent` NULL
 * means the calling thread's current greenlet; a parent of another thread is
 * refused (GL_EWRONGTHREAD). The caller owns the record and releases it with
 * gl_destroy(). Errors: GL_EINVAL (run NULL), GL_ENOMEM. */
GL_EXPORT int gl_create(gl_greenlet **out, gl_run_function *run,
                        void *argument, gl_greenlet *parent);

/* Switches to `target`, sending `message`. Returns when some greenlet
 * switches back to the caller; `*received` (may be NULL) then holds the
 * message it sent. A NEW target starts running its run function with
 * `message` as `first`. Switching to the current greenlet returns at once
 * with `message` received.
 * Errors (nothing has happened, both greenlets are as they were):
 * GL_EDEAD, GL_EWRONGTHREAD, GL_ETHREADEXITED, GL_ENOMEM (the stack bytes
 * that the target needs could not be saved), GL_EINVAL (target NULL). */
GL_EXPORT int gl_switch(gl_greenlet *target, gl_message message,
                        gl_message *received);

/* Kills a NEW or SUSPENDED greenlet without running it: it becomes DEAD and
 * its heap copy is freed. Its C frames never resume, so a runtime that must
 * unwind them (Python) throws into the greenlet instead. Killing a dead
 * greenlet does nothing, and so does killing one whose thread has exited
 * (it died with its thread). Errors: GL_EBUSY (the greenlet is running; a
 * thread's main greenlet, too, counts as running until its thread exits),
 * GL_EWRONGTHREAD (called from a thread other than the greenlet's, while
 * that thread lives). */
GL_EXPORT int gl_kill(gl_greenlet *greenlet);

/* Kills the greenlet (as gl_kill) and releases the caller's record. The
 * memory lives on while other greenlets name it as their parent, so parent
 * pointers never dangle. Only the greenlet's thread may destroy it, even a
 * dead one, or any thread once that thread has exited (a runtime that
 * drops greenlets in other threads hands them to their thread). Errors as
 * gl_kill; on error nothing is released. A thread's main greenlet is
 * released by the engine, never by gl_destroy (GL_EINVAL). */
GL_EXPORT int gl_destroy(gl_greenlet *greenlet);

/* Keeps the record's memory valid until the matching gl_release(), even
 * after its thread has exited; for a runtime object that stands for a
 * thread's main greenlet, whose record the engine otherwise frees with the
 * thread. Any thread may call them. gl_release never kills. */
GL_EXPORT void gl_hold(gl_greenlet *greenlet);
GL_EXPORT void gl_release(gl_greenlet *greenlet);

/* The calling thread's current and main greenlets, creating the thread's
 * main greenlet on first use. NULL only when that allocation fails. */
GL_EXPORT gl_greenlet *gl_current(void);
GL_EXPORT gl_greenlet *gl_main(void);

/* The parent (NULL for a main greenlet). */
GL_EXPORT gl_greenlet *gl_parent(const gl_greenlet *greenlet);

/* Makes `parent` the parent of `greenlet`. A greenlet that never ran may
 * take a parent of the calling thread when it belongs to another: it then
 * moves to the calling thread (a greenlet is created in one thread and
 * started in another that way). Errors: GL_EINVAL (a NULL argument, or
 * greenlet is a main greenlet), GL_ECYCLE (parent is greenlet or one of its
 * descendants), GL_EWRONGTHREAD (the two belong to different threads and
 * greenlet cannot move, or the caller is not their thread). */
GL_EXPORT int gl_set_parent(gl_greenlet *greenlet, gl_greenlet *parent);

GL_EXPORT gl_state gl_state_of(const gl_greenlet *greenlet);
GL_EXPORT uint64_t gl_id(const gl_greenlet *greenlet);
/* 1 for a thread's main greenlet, else 0. */
GL_EXPORT int gl_is_main(const gl_greenlet *greenlet);
/* 1 when the greenlet belongs to the calling thread, else 0. */
GL_EXPORT int gl_is_mine(const gl_greenlet *greenlet);
/* 1 when the thread the greenlet belongs to has exited, else 0. Takes the
 * registry lock unless the greenlet is the caller's. */
GL_EXPORT int gl_thread_exited(const gl_greenlet *greenlet);

/* One pointer that the runtime above keeps in the record (the CPython
 * binding keeps its greenlet object there). NULL until set. */
GL_EXPORT void gl_set_binding(gl_greenlet *greenlet, void *binding);
GL_EXPORT void *gl_binding(const gl_greenlet *greenlet);

/* ------------------------------------------------------------------ hooks */

/* A runtime's per-greenlet state is saved and restored around every switch.
 * `save_state(origin)` runs while the origin's stack is fully in place,
 * before any byte moves; `restore_state(target)` runs after the target's
 * bytes are back, before its code resumes. `observe(origin, target, thrown)`
 * runs on every switch, in the target, after restore_state. When a greenlet
 * starts, restore_state and observe run in it before its run function.
 * Each hook may be NULL; each costs one indirect call per switch when set.
 * No hook may switch greenlets. Set hooks before creating greenlets; they
 * are process-wide. */
typedef struct gl_runtime_hooks {
    void (*save_state)(gl_greenlet *origin, void *context);
    void (*restore_state)(gl_greenlet *target, void *context);
    void (*observe)(gl_greenlet *origin, gl_greenlet *target, int thrown,
                    void *context);
    void *context;
} gl_runtime_hooks;

/* Copies *hooks (NULL removes all). */
GL_EXPORT void gl_set_runtime_hooks(const gl_runtime_hooks *hooks);

/* Where the engine gets memory: records and heap copies of stacks. The
 * functions follow malloc/realloc/free, plus a context pointer. Tests install
 * one that fails on demand. NULL restores the C library's. Set it while no
 * greenlet exists, or with functions that can free each other's memory. */
typedef struct gl_allocator {
    void *(*allocate)(size_t size, void *context);
    void *(*reallocate)(void *memory, size_t size, void *context);
    void (*release)(void *memory, void *context);
    void *context;
} gl_allocator;

GL_EXPORT void gl_set_allocator(const gl_allocator *allocator);

/* --------------------------------------------------------------- registry */

/* A copy of one record's public part. Addresses are numbers, not pointers:
 * from another thread they may be stale by the time they are read, and the
 * heap copy may have been freed, so a walker must never dereference them. */
typedef struct gl_greenlet_info {
    uint64_t id;
    uint64_t parent_id;        /* 0: no parent (a main greenlet) */
    uint64_t thread_serial;    /* the engine's number for the thread, from 1 */
    int64_t thread_os_id;      /* gettid() of the thread */
    gl_state state;
    int is_main;
    /* The greenlet's stack is [stack_pointer, stack_stop): stack_stop is
     * where it started (for a main greenlet, the top of the thread's stack);
     * stack_pointer where it was suspended (0 when NEW, DEAD, or RUNNING,
     * whose stack pointer moves). Of that range, [stack_pointer,
     * stack_pointer + saved_bytes) is on the heap now and the rest is live. */
    uintptr_t stack_pointer;
    uintptr_t stack_stop;
    uintptr_t thread_stack_low; /* lowest address of the thread's stack, 0
                                   if unknown: a running greenlet's stack is
                                   [thread_stack_low, stack_stop) */
    uintptr_t heap_copy;       /* address of the heap copy, 0 if none */
    size_t saved_bytes;        /* stack bytes held on the heap now */
    size_t saved_bytes_peak;   /* most ever held at once */
    size_t heap_capacity;      /* heap bytes held for its stack: the heap
                                  copy, whether it holds saved bytes or is
                                  kept empty for the next save */
    uint64_t switches;         /* times it was switched to */
    uint64_t created_ns;       /* CLOCK_MONOTONIC_COARSE at creation */
    uint64_t last_ran_serial;  /* thread's switch serial when last resumed */
    void *binding;
} gl_greenlet_info;

/* Per-thread facts: the thread's own counters and totals. */
typedef struct gl_thread_info {
    uint64_t serial;
    int64_t os_id;
    int exited;
    uint64_t switch_serial;    /* switches made in this thread so far */
    uint64_t current_id;       /* id of its running greenlet */
    size_t saved_bytes;        /* sum of saved_bytes of its greenlets */
    size_t saved_bytes_peak;
    size_t greenlets;          /* records of the thread, main included */
} gl_thread_info;

/* Copies the record of `greenlet` into *info. Exact when called from the
 * greenlet's own thread; from another thread the copy is consistent (taken
 * under the registry lock and the thread's switch sequence count) but may
 * be stale at once. The caller must keep the record alive. */
GL_EXPORT void gl_greenlet_get_info(const gl_greenlet *greenlet,
                                    gl_greenlet_info *info);

/* How other threads walk the registry safely: gl_registry_walk holds the
 * registry lock, which creation and destruction of records also take, so no
 * record is freed during the walk; switches take no lock, so each thread's
 * records are copied under that thread's switch sequence count (a copy is
 * retried when a switch ran during it) and handed to the callbacks as
 * consistent snapshots. Callbacks get copies only, must not call into the
 * engine, and return nonzero to stop the walk early. Cost: O(live records);
 * threads that switch constantly can make a copy retry a few times.
 * `on_thread` and `on_greenlet` may be NULL; `on_thread` comes before the
 * greenlets of its thread. Returns the number of records visited. */
typedef int gl_thread_visitor(const gl_thread_info *thread, void *context);
typedef int gl_greenlet_visitor(const gl_greenlet_info *greenlet,
                                void *context);
GL_EXPORT size_t gl_registry_walk(gl_thread_visitor *on_thread,
                                  gl_greenlet_visitor *on_greenlet,
                                  void *context);

/* Stack bytes held on the heap by the calling thread's greenlets, and by all
 * greenlets of the process (a sum over threads under the registry lock).
 * Both are exact: they change only inside switches and kills. */
GL_EXPORT size_t gl_thread_saved_bytes(void);
GL_EXPORT size_t gl_process_saved_bytes(void);

/* Runs fn(context) with the registry locked and returns what it returns.
 * Meanwhile no record is created or freed and no thread retires its
 * records (thread exit waits), so another thread's suspended greenlet
 * keeps its heap copy and its thread keeps its stack. It does not stop
 * that thread from switching: a caller that reads such a greenlet's stack
 * (inspect/) must also keep its thread from switching by other means (the
 * CPython binding holds the GIL, without which no greenlet switches). The
 * lock is recursive; fn may call gl_greenlet_get_info and
 * gl_registry_walk, but must not create or destroy greenlets. */
GL_EXPORT int gl_registry_call(int (*fn)(void *context), void *context);

/* Calls visit(address, size, context) for every block of memory the
 * engine holds: thread and greenlet records and the heap copies of saved
 * stacks, whose words point into stacks by design. The hazard audit
 * (inspect/hazard_scan.c) leaves them out. Under the registry lock: visit
 * must not call into the engine. */
typedef void gl_block_visitor(const void *address, size_t size,
                              void *context);
GL_EXPORT void gl_engine_blocks(gl_block_visitor *visit, void *context);

/* ---------------------------------------------------------------- monitor */

/* The monitor segment (src/monitor.c, layout in src/monitor_layout.h):
 * every process that creates a greenlet publishes the public part of its
 * records in a memfd named "greenlet-monitor", which tools of the same
 * user find through /proc. A background thread writes it, and only while
 * a reader is attached; switches never touch it. GREENLET_MONITOR=0 in the
 * environment turns it off. A runtime above the engine adds what only it
 * knows (where each greenlet is, names, full stacks on request) through
 * these callbacks, which the monitor's thread calls: */

/* Text handed to the monitor, copied at once; need not be terminated. */
typedef struct gl_monitor_text {
    const char *text;
    size_t length;
} gl_monitor_text;

/* What a runtime says about one greenlet. Zeroed before each call; fields
 * left empty stay absent. */
typedef struct gl_monitor_place {
    gl_monitor_text name;          /* a label, or the kind of greenlet */
    gl_monitor_text function;      /* where it runs or is suspended */
    gl_monitor_text file;
    unsigned line;
    gl_monitor_text spawn_function; /* where it was created */
    gl_monitor_text spawn_file;
    unsigned spawn_line;
    int hazard;                    /* nonzero: the last hazard audit found
                                      a pointer into its saved stack */
} gl_monitor_place;

typedef struct gl_monitor_runtime {
    const char *name; /* e.g. "CPython 3.11.2" */
    /* Brackets each publication and each answer: enter makes the other
     * callbacks safe to call from the monitor's thread (CPython: takes the
     * GIL) and returns 0, or nonzero when the runtime is gone (shutting
     * down): then the engine publishes its own facts only, and leave is
     * not called. Records copied inside the bracket stay valid in it. */
    int (*enter)(void *context);
    void (*leave)(void *context);
    /* May be NULL. Must not call into the engine except gl_registry_walk,
     * gl_greenlet_get_info and inspect/'s readers. */
    void (*describe_greenlet)(const gl_greenlet_info *greenlet,
                              gl_monitor_place *place, void *context);
    void (*describe_thread)(const gl_thread_info *thread,
                            gl_monitor_text *name, void *context);
    /* Writes the answer to a request for the stacks of greenlet `id`
     * (kinds: GL_MONITOR_REQUEST_* bits, untrusted) in the line format of
     * monitor_layout.h into buffer, at most `capacity` bytes, its length in
     * *size; returns a GL_MONITOR_ANSWER_* status. */
    int (*answer)(uint64_t id, unsigned kinds, char *buffer, size_t capacity,
                  size_t *size, void *context);
    void *context;
} gl_monitor_runtime;

/* Installs the runtime's callbacks (NULL: none). The monitor's thread may
 * still be inside the old callbacks for a moment after they are replaced,
 * so the struct must stay valid as long as the process runs (a static
 * struct, as the CPython binding uses). Install before creating
 * greenlets. */
GL_EXPORT void gl_monitor_set_runtime(const gl_monitor_runtime *runtime);

/* 1 when this process publishes a segment now, else 0 (turned off, not
 * started yet because no greenlet was created, or it could not be made). */
GL_EXPORT int gl_monitor_enabled(void);

/* The gettid() of the monitor's thread, 0 if it has none (not started).
 * Its stack holds copies of records, stack addresses included: the hazard
 * audit leaves it out, as the engine's own memory. */
GL_EXPORT int64_t gl_monitor_thread_os_id(void);

/* ------------------------------------------------------------ unwinders */

/* A suspended greenlet's innermost frame is its switch frame (arch/), whose
 * call-frame information describes where the greenlet's registers are. To
 * walk its stack, start an unwinder at this instruction address with the
 * stack pointer gl_greenlet_info.stack_pointer, reading memory as the
 * greenlet sees it. The walk ends cleanly at the greenlet's root frame. */
GL_EXPORT uintptr_t gl_switch_frame_ip(void);

#ifdef __cplusplus
}
#endif
#endif /* GLENGINE_H */
