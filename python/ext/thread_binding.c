/*
 * thread_binding.c -- each thread's part of the binding: its running and
 * main greenlet objects, and what happens to them when the thread ends.
 *
 * A thread's main greenlet object is made on its first use of greenlets
 * and stands for the engine's main record of the thread. The binding holds
 * it, and the running greenlet, in gl_py_this_thread.
 *
 * When the thread ends, CPython clears its thread state, dict first; a
 * capsule in that dict tells us (forget_thread), and the binding drops its
 * references then, so that after join() the main greenlet is gone unless
 * something else holds it. Its suspended greenlets are not killed: code
 * elsewhere may hold them, and, as with upstream greenlet, they read as
 * dead once the thread has exited and are freed without running when
 * dropped (their frames' memory and references released,
 * cpython_compat.c's gl_py_state_release_orphaned). What refers only to
 * the thread's own frames or dict dies with them, killed in the thread.
 *
 * Code that runs later in that teardown (another entry of the thread dict
 * whose deletion kills a greenlet) may need the main greenlet again: it is
 * found through the engine's record, and what is held from then on is
 * released when the OS thread exits: a thread-specific-data destructor
 * (no GIL, no thread state) queues it, and the queue is emptied by a
 * pending call (Py_AddPendingCall, run by the main thread) or by whichever
 * thread next creates, switches or looks up a greenlet. The queue's length
 * is get_pending_cleanup_count()'s.
 */
#include "binding.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

__thread gl_py_thread gl_py_this_thread
    __attribute__((tls_model("initial-exec")));

#define CAPSULE_NAME "greenlet.thread"

/* ------------------------------------------------------- main greenlets */

static atomic_long main_greenlets_alive;

Py_ssize_t gl_py_main_greenlets_alive(void)
{
    return atomic_load(&main_greenlets_alive);
}

void gl_py_main_greenlet_freed(void)
{
    atomic_fetch_sub(&main_greenlets_alive, 1);
}

/* The object for this thread's main record: the one still bound to it
 * (the thread state was replaced, or is being cleared), or a new one.
 * Returns a new reference, or NULL with an exception set. */
static PyGreenlet *main_greenlet_object(void)
{
    gl_greenlet *record = gl_main();
    if (!record)
        return (PyGreenlet *)PyErr_NoMemory();
    PyGreenlet *main = gl_binding(record);
    if (main && Py_REFCNT(main) > 0) /* 0: in its deallocation */
        return (PyGreenlet *)Py_NewRef(main);
    main = (PyGreenlet *)PyGreenlet_Type.tp_alloc(&PyGreenlet_Type, 0);
    if (!main)
        return NULL;
    main->pimpl = PyMem_Calloc(1, sizeof *main->pimpl);
    if (!main->pimpl) {
        Py_DECREF(main);
        return (PyGreenlet *)PyErr_NoMemory();
    }
    atomic_fetch_add(&main_greenlets_alive, 1);
    gl_hold(record); /* the object may outlive the thread */
    main->pimpl->record = record;
    main->pimpl->is_main = 1;
    main->pimpl->state.started = 1;
    main->pimpl->thread_ident = PyThread_get_thread_ident();
    gl_set_binding(record, main);
    return main;
}

/* ----------------------------------------------- after the thread ends */

/* The optional cleanup: releasing what the frames of a suspended greenlet
 * whose thread has exited still hold, when it is freed or collected (its
 * frames never run again). Disabled, they leak, as with upstream
 * greenlet. The clock() ticks it took so far; -1 while disabled. */
static long long optional_cleanup_clocks;

long long gl_py_optional_cleanup_clocks(void)
{
    return optional_cleanup_clocks;
}

void gl_py_enable_optional_cleanup(int enable)
{
    if (!enable)
        optional_cleanup_clocks = -1;
    else if (optional_cleanup_clocks < 0)
        optional_cleanup_clocks = 0;
}

int gl_py_traverse_orphaned_frames(gl_py_saved_state *state, visitproc visit,
                                   void *arg)
{
    if (optional_cleanup_clocks < 0)
        return 0; /* what is not released is not the greenlet's to show */
    return gl_py_state_traverse_orphaned(state, visit, arg);
}

void gl_py_release_orphaned_frames(gl_py_saved_state *state)
{
    if (optional_cleanup_clocks < 0)
        return;
    clock_t begin = clock();
    gl_py_state_release_orphaned(state); /* runs finalizers */
    if (optional_cleanup_clocks >= 0)
        optional_cleanup_clocks += (long long)(clock() - begin);
}

/* What a thread held when its OS thread exited, for another thread to
 * release. */
struct leftovers {
    PyObject *objects[4];
    struct leftovers *next;
};

static pthread_mutex_t leftovers_lock = PTHREAD_MUTEX_INITIALIZER;
static struct leftovers *first_leftovers;
static atomic_int leftovers_count;
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

Py_ssize_t gl_py_pending_cleanups(void)
{
    return atomic_load(&leftovers_count) + gl_py_deferred_of_exited_threads();
}

void gl_py_release_leftovers(void)
{
    if (atomic_load_explicit(&leftovers_count, memory_order_relaxed) == 0)
        return;
    pthread_mutex_lock(&leftovers_lock);
    struct leftovers *all = first_leftovers;
    first_leftovers = NULL;
    atomic_store(&leftovers_count, 0);
    pthread_mutex_unlock(&leftovers_lock);
    while (all) {
        struct leftovers *next = all->next;
        for (size_t i = 0; i < sizeof all->objects / sizeof *all->objects; i++)
            Py_XDECREF(all->objects[i]);
        PyMem_RawFree(all);
        all = next;
    }
}

static int release_leftovers_call(void *unused)
{
    (void)unused;
    gl_py_release_leftovers();
    return 0;
}

/* The OS thread exits (thread-specific-data destructor): no GIL, no
 * thread state; the references only move to the queue. */
static void thread_exits(void *thread)
{
    gl_py_thread *t = thread;
    struct leftovers *left = PyMem_RawMalloc(sizeof *left);
    if (!left)
        return; /* no memory: they leak */
    left->objects[0] = (PyObject *)t->current;
    left->objects[1] = (PyObject *)t->main;
    left->objects[2] = (PyObject *)t->to_release;
    left->objects[3] = t->trace_function;
    t->current = t->main = t->to_release = NULL;
    t->trace_function = NULL;
    pthread_mutex_lock(&leftovers_lock);
    left->next = first_leftovers;
    first_leftovers = left;
    int was_empty = atomic_fetch_add(&leftovers_count, 1) == 0;
    pthread_mutex_unlock(&leftovers_lock);
    if (was_empty && Py_IsInitialized())
        Py_AddPendingCall(release_leftovers_call, NULL);
}

static void create_exit_key(void)
{
    if (pthread_key_create(&exit_key, thread_exits) != 0)
        exit_key = (pthread_key_t)-1; /* what is held late then leaks */
}

/* Held after the thread state was cleared: released at OS thread exit. */
static void release_at_thread_exit(gl_py_thread *t)
{
    pthread_once(&exit_key_once, create_exit_key);
    if (exit_key != (pthread_key_t)-1)
        pthread_setspecific(exit_key, t);
}

/* The thread's state is being cleared: drop what the binding holds. */
static void forget_thread(PyObject *capsule)
{
    gl_py_thread *t = &gl_py_this_thread;
    /* CPython also clears other threads' states from one thread (after
     * fork, at exit): then there is nothing of ours to do here. */
    if (PyCapsule_GetPointer(capsule, CAPSULE_NAME) != t)
        return;
    PyThreadState *tstate = _PyThreadState_UncheckedGet();
    gl_py_release_deferred();
    t->retired_state = tstate;
    PyGreenlet *current = t->current, *main = t->main, *leftover = t->to_release;
    PyObject *tracer = t->trace_function;
    t->current = t->main = t->to_release = NULL;
    t->trace_function = NULL;
    Py_XDECREF(leftover);
    Py_XDECREF(current);
    Py_XDECREF(main);
    Py_XDECREF(tracer);
    gl_py_thread_ends(tstate);
    gl_py_drop_recreated_thread_dict(tstate);
}

/* Puts the capsule whose destructor is forget_thread in the thread
 * state's dict. 0, or -1 with an exception set. */
static int watch_thread_end(gl_py_thread *t)
{
    PyObject *thread_dict = PyThreadState_GetDict();
    if (!thread_dict)
        return 0; /* no thread state dict: nothing will tell us */
    PyObject *capsule = PyCapsule_New(t, CAPSULE_NAME, forget_thread);
    if (!capsule)
        return -1;
    /* Never replace a capsule already there: replacing would run its
     * destructor. */
    PyObject *key = PyUnicode_FromString(CAPSULE_NAME);
    PyObject *kept = key ? PyDict_SetDefault(thread_dict, key, capsule) : NULL;
    Py_XDECREF(key);
    Py_DECREF(capsule);
    return kept ? 0 : -1;
}

PyGreenlet *gl_py_current_slow(void)
{
    gl_py_thread *t = &gl_py_this_thread;
    gl_py_release_leftovers();
    PyGreenlet *main = main_greenlet_object();
    if (!main)
        return NULL;
    t->main = main;
    t->current = (PyGreenlet *)Py_NewRef(main);
    PyThreadState *tstate = _PyThreadState_UncheckedGet();
    if (tstate == t->retired_state) { /* still in its teardown */
        release_at_thread_exit(t);
        return main;
    }
    t->retired_state = NULL;
    gl_py_thread_begins(tstate);
    if (watch_thread_end(t) < 0)
        return NULL;
    return main;
}
