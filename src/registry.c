/*
 * registry.c -- the process-wide registry of threads and greenlet records,
 * and the consistent copies that other threads read out of it.
 *
 * Layout: a list of thread records, each with a list of its greenlet
 * records (main greenlet included). The lists, reference counts and the
 * freeing of records are guarded by one mutex, taken on creation and
 * destruction but never by a switch. What switches change is read under the
 * owning thread's sequence count instead (see engine.h).
 */
#define _GNU_SOURCE
#include "engine.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

/* Recursive, so that gl_registry_call's function may walk the registry. */
static pthread_mutex_t registry_mutex = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static gl__thread *first_thread;
static uint64_t next_greenlet_id = 1; /* under the lock; never reused */

void gl__registry_lock(void)
{
    pthread_mutex_lock(&registry_mutex);
}

void gl__registry_unlock(void)
{
    pthread_mutex_unlock(&registry_mutex);
}

void gl__registry_reset_lock(void)
{
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_settype(&attributes, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&registry_mutex, &attributes);
    pthread_mutexattr_destroy(&attributes);
    pthread_mutex_lock(&registry_mutex);
}

int gl_registry_call(int (*fn)(void *context), void *context)
{
    gl__registry_lock();
    int result = fn(context);
    gl__registry_unlock();
    return result;
}

gl__thread *gl__registry_first_thread(void)
{
    return first_thread;
}

void gl__registry_add_thread(gl__thread *thread)
{
    thread->registry_prev = NULL;
    thread->registry_next = first_thread;
    if (first_thread)
        first_thread->registry_prev = thread;
    first_thread = thread;
}

static void link_into_thread(gl_greenlet *greenlet, gl__thread *thread)
{
    greenlet->thread = thread;
    greenlet->thread_prev = NULL;
    greenlet->thread_next = thread->first_greenlet;
    if (thread->first_greenlet)
        thread->first_greenlet->thread_prev = greenlet;
    thread->first_greenlet = greenlet;
    thread->references++;
}

static void unlink_from_thread(gl_greenlet *greenlet)
{
    gl__thread *thread = greenlet->thread;
    if (greenlet->thread_prev)
        greenlet->thread_prev->thread_next = greenlet->thread_next;
    else
        thread->first_greenlet = greenlet->thread_next;
    if (greenlet->thread_next)
        greenlet->thread_next->thread_prev = greenlet->thread_prev;
}

void gl__registry_add_greenlet(gl_greenlet *greenlet)
{
    greenlet->id = next_greenlet_id++;
    link_into_thread(greenlet, greenlet->thread);
}

void gl__registry_move_greenlet(gl_greenlet *greenlet, gl__thread *thread)
{
    gl__thread *old = greenlet->thread;
    unlink_from_thread(greenlet);
    link_into_thread(greenlet, thread);
    gl__thread_unreference(old);
}

void gl__thread_unreference(gl__thread *thread)
{
    if (--thread->references > 0)
        return;
    if (thread->registry_prev)
        thread->registry_prev->registry_next = thread->registry_next;
    else
        first_thread = thread->registry_next;
    if (thread->registry_next)
        thread->registry_next->registry_prev = thread->registry_prev;
    gl__release_scrubbed(thread, sizeof *thread);
}

void gl__greenlet_unreference(gl_greenlet *greenlet)
{
    /* Iterative, so that a long chain of dead parents does not recurse. */
    while (greenlet && --greenlet->references == 0) {
        gl__thread *thread = greenlet->thread;
        gl_greenlet *parent = greenlet->parent;
        unlink_from_thread(greenlet);
        if (!greenlet->is_main) /* a main greenlet lives inside its thread */
            gl__release_scrubbed(greenlet, sizeof *greenlet);
        gl__thread_unreference(thread);
        greenlet = parent;
    }
}

/* ---------------------------------------------------------------- copies */

static void copy_greenlet_info(const gl_greenlet *g, gl_greenlet_info *info)
{
    info->id = g->id;
    info->parent_id = g->parent ? g->parent->id : 0;
    info->thread_serial = g->thread->serial;
    info->thread_os_id = g->thread->os_id;
    info->state = g->state;
    info->is_main = g->is_main;
    info->stack_pointer =
        g->state == GL_STATE_SUSPENDED ? (uintptr_t)g->stack_pointer : 0;
    info->stack_stop = (uintptr_t)g->stack_stop;
    if (g->is_main)
        info->stack_stop = (uintptr_t)g->thread->stack_high;
    info->thread_stack_low = (uintptr_t)g->thread->stack_low;
    /* A copy kept for the next save holds nothing of the greenlet's now. */
    info->heap_copy = g->saved_bytes ? (uintptr_t)g->heap_copy : 0;
    info->saved_bytes = g->saved_bytes;
    info->saved_bytes_peak = g->saved_bytes_peak;
    info->heap_capacity = g->heap_capacity;
    info->switches = g->switches;
    info->created_ns = g->created_ns;
    info->last_ran_serial = g->last_ran_serial;
    info->binding = g->binding;
}

static void copy_thread_info(const gl__thread *t, gl_thread_info *info)
{
    info->serial = t->serial;
    info->os_id = t->os_id;
    info->exited = t->exited;
    info->switch_serial = t->switch_serial;
    info->current_id = t->current ? t->current->id : 0;
    info->saved_bytes = t->saved_bytes;
    info->saved_bytes_peak = t->saved_bytes_peak;
    info->greenlets = t->references - !t->exited;
}

/* Runs copy(source, destination) until no switch of `thread` overlapped
 * it. From the thread itself no retry is needed, and none could succeed
 * inside a hook, where the count is odd. */
#define COPY_UNDER_SEQUENCE(thread, copy, source, destination)               \
    do {                                                                      \
        if ((thread) == gl__this_thread_record) {                             \
            copy(source, destination);                                        \
            break;                                                            \
        }                                                                     \
        for (unsigned attempt = 0;; attempt++) {                              \
            uint64_t before = atomic_load_explicit(&(thread)->switch_sequence, \
                                                   memory_order_acquire);     \
            if (!(before & 1)) {                                              \
                copy(source, destination);                                    \
                atomic_thread_fence(memory_order_acquire);                    \
                if (atomic_load_explicit(&(thread)->switch_sequence,          \
                                         memory_order_relaxed) == before)     \
                    break;                                                    \
            }                                                                 \
            if (attempt > 64)                                                 \
                sched_yield();                                                \
        }                                                                     \
    } while (0)

void gl_greenlet_get_info(const gl_greenlet *greenlet, gl_greenlet_info *info)
{
    gl__thread *thread = greenlet->thread;
    if (thread == gl__this_thread_record) {
        copy_greenlet_info(greenlet, info);
        return;
    }
    /* The lock keeps its parent record alive while we read its id. */
    gl__registry_lock();
    COPY_UNDER_SEQUENCE(thread, copy_greenlet_info, greenlet, info);
    gl__registry_unlock();
}

size_t gl_registry_walk(gl_thread_visitor *on_thread,
                        gl_greenlet_visitor *on_greenlet, void *context)
{
    size_t visited = 0;
    int stop = 0;
    gl__registry_lock();
    for (gl__thread *t = first_thread; t && !stop; t = t->registry_next) {
        if (on_thread) {
            gl_thread_info thread_info;
            COPY_UNDER_SEQUENCE(t, copy_thread_info, t, &thread_info);
            stop = on_thread(&thread_info, context);
        }
        for (gl_greenlet *g = t->first_greenlet; g && !stop;
             g = g->thread_next) {
            gl_greenlet_info info;
            COPY_UNDER_SEQUENCE(t, copy_greenlet_info, g, &info);
            visited++;
            if (on_greenlet)
                stop = on_greenlet(&info, context);
        }
    }
    gl__registry_unlock();
    return visited;
}

void gl_engine_blocks(gl_block_visitor *visit, void *context)
{
    gl__registry_lock();
    for (gl__thread *t = first_thread; t; t = t->registry_next) {
        visit(t, sizeof *t, context);
        for (gl_greenlet *g = t->first_greenlet; g; g = g->thread_next) {
            visit(g, sizeof *g, context);
            if (g->heap_copy)
                visit(g->heap_copy, g->heap_capacity, context);
        }
    }
    gl__registry_unlock();
}

size_t gl_thread_saved_bytes(void)
{
    gl__thread *thread = gl__this_thread_record;
    return thread ? thread->saved_bytes : 0;
}

size_t gl_process_saved_bytes(void)
{
    size_t total = 0;
    gl__registry_lock();
    for (gl__thread *t = first_thread; t; t = t->registry_next)
        total += *(volatile size_t *)&t->saved_bytes; /* owner writes it */
    gl__registry_unlock();
    return total;
}
