/*
 * threads.c -- per-thread state: the thread record, its main greenlet, and
 * what happens when the thread exits.
 *
 * A thread's record is created on its first call into the engine and found
 * through an initial-exec thread-local pointer (one load, no call, on the
 * switch path). It outlives the thread while any of the thread's greenlet
 * records remain, because those records point at it; a thread-specific-data
 * destructor marks it exited and kills the greenlets that can never run
 * again now that their stack is gone.
 */
#define _GNU_SOURCE
#include "engine.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

__thread gl__thread *gl__this_thread_record
    __attribute__((tls_model("initial-exec")));

static pthread_key_t thread_exit_key;
static pthread_once_t thread_exit_key_once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t next_thread_serial = 1;

uint64_t gl__monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now); /* ~1 ms is precise enough */
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* The thread will never run again: every greenlet of it that started is
 * dead from now on, since its frames lived on a stack that is going away;
 * greenlets that never started have no stack and stay NEW, for another
 * thread to adopt. Records stay until their owners destroy them. Under the
 * registry lock. */
static void retire(gl__thread *thread)
{
    /* Even if a fork caught the thread in the middle of a switch. */
    uint_fast64_t sequence = atomic_load(&thread->switch_sequence);
    atomic_store(&thread->switch_sequence, sequence | 1);
    thread->current = NULL; /* no chain of live stacks is left */
    for (gl_greenlet *g = thread->first_greenlet; g; g = g->thread_next) {
        if (g->state == GL_STATE_NEW)
            continue;
        gl__stack_discard(thread, g);
        g->state = GL_STATE_DEAD;
    }
    thread->exited = 1;
    gl__records_change_end(thread);
    gl__greenlet_unreference(&thread->main_greenlet); /* the thread's hold */
    gl__thread_unreference(thread);                   /* "while it lives" */
}

/* Runs at the exit of a thread that ever used the engine. */
static void thread_exit(void *record)
{
    gl__registry_lock();
    retire(record);
    gl__this_thread_record = NULL;
    gl__registry_unlock();
}

/* fork(): the child has only the forking thread. The registry lock is
 * held across the fork so that the child finds the lists whole, and the
 * child retires every other thread's record, as if those threads had
 * exited. */
static void before_fork(void)
{
    gl__monitor_before_fork();
    gl__registry_lock();
}

static void after_fork_in_parent(void)
{
    gl__registry_unlock();
    gl__monitor_after_fork_in_parent();
}

static void after_fork_in_child(void)
{
    gl__registry_reset_lock();
    gl__thread *survivor = gl__this_thread_record;
    if (survivor) { /* the forking thread is a new thread to the kernel */
        gl__records_change_begin(survivor);
        survivor->os_id = gettid();
        gl__records_change_end(survivor);
    }
    gl__thread *t = gl__registry_first_thread();
    while (t) {
        gl__thread *next = t->registry_next; /* t may be freed */
        if (t != survivor && !t->exited)
            retire(t);
        t = next;
    }
    gl__registry_unlock();
    gl__monitor_after_fork_in_child();
}

static void create_thread_exit_key(void)
{
    /* Without the key, threads still work; only their exit goes unseen. */
    if (pthread_key_create(&thread_exit_key, thread_exit) != 0)
        thread_exit_key = (pthread_key_t)-1;
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

/* Asks the threads library where this thread's stack lies. Used for
 * reports and for sanitizer bookkeeping only; the switch does not need it. */
static void find_stack_bounds(gl__thread *thread)
{
    pthread_attr_t attributes;
    void *low;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0)
        return;
    if (pthread_attr_getstack(&attributes, &low, &size) == 0) {
        thread->stack_low = low;
        thread->stack_high = (char *)low + size;
    }
    pthread_attr_destroy(&attributes);
}

gl__thread *gl__thread_slow(void)
{
    pthread_once(&thread_exit_key_once, create_thread_exit_key);
    gl__thread *thread = gl__allocate(sizeof *thread);
    if (!thread)
        return NULL;
    memset(thread, 0, sizeof *thread);
    thread->serial = atomic_fetch_add(&next_thread_serial, 1);
    thread->os_id = gettid();
    find_stack_bounds(thread);
    thread->deepest_switch_pointer = (char *)UINTPTR_MAX;

    gl_greenlet *main = &thread->main_greenlet;
    main->thread = thread;
    main->is_main = 1;
    main->state = GL_STATE_RUNNING;
    /* The main greenlet owns the stack all the way up. */
    main->stack_stop = (char *)UINTPTR_MAX;
    main->created_ns = gl__monotonic_ns();
    thread->current = main;

    gl__registry_lock();
    thread->references = 1; /* while the thread lives */
    gl__registry_add_thread(thread);
    main->references = 1; /* held by the thread until it exits */
    gl__registry_add_greenlet(main);
    gl__registry_unlock();

    if (thread_exit_key != (pthread_key_t)-1)
        pthread_setspecific(thread_exit_key, thread);
    gl__this_thread_record = thread;
    return thread;
}
