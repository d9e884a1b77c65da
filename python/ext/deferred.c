/*
 * deferred.c -- greenlets dropped in a thread other than their own.
 *
 * Only a greenlet's own thread may kill it (its frames must unwind on its
 * stack) or release its engine record. When the last reference to a
 * greenlet goes away in another thread, while its own thread lives, its
 * deallocation keeps it alive on a process-wide list instead; its thread
 * takes it back at its next switch, greenlet creation or getcurrent() (or
 * when it ends), kills it if it was suspended, and releases it. Entries
 * whose thread has exited meanwhile are released by whichever thread
 * looks next. Cost on the switch path: one atomic load.
 */
#include "binding.h"

#include <stdatomic.h>

struct deferred {
    PyGreenlet *greenlet; /* the list's reference */
    struct deferred *next;
};

static PyThread_type_lock list_lock;
static struct deferred *first_deferred;
static atomic_int deferred_count;
static PyObject *kill_reason;

int gl_py_deferred_init(void)
{
    list_lock = PyThread_allocate_lock();
    kill_reason = PyUnicode_InternFromString(
        "Killing the greenlet because all references have vanished.");
    if (!list_lock || !kill_reason) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

PyObject *gl_py_kill_reason(void)
{
    return kill_reason;
}

Py_ssize_t gl_py_deferred_of_exited_threads(void)
{
    if (atomic_load_explicit(&deferred_count, memory_order_relaxed) == 0)
        return 0;
    Py_ssize_t count = 0;
    PyThread_acquire_lock(list_lock, WAIT_LOCK);
    for (struct deferred *entry = first_deferred; entry; entry = entry->next)
        count += gl_thread_exited(entry->greenlet->pimpl->record);
    PyThread_release_lock(list_lock);
    return count;
}

int gl_py_defer_release(PyGreenlet *greenlet)
{
    struct deferred *entry = PyMem_RawMalloc(sizeof *entry);
    if (!entry) {
        PyErr_NoMemory();
        return -1;
    }
    Py_INCREF(greenlet); /* now the list's */
    entry->greenlet = greenlet;
    PyThread_acquire_lock(list_lock, WAIT_LOCK);
    entry->next = first_deferred;
    first_deferred = entry;
    atomic_fetch_add(&deferred_count, 1);
    PyThread_release_lock(list_lock);
    return 0;
}

void gl_py_release_deferred(void)
{
    if (atomic_load_explicit(&deferred_count, memory_order_relaxed) == 0)
        return;
    struct deferred *mine = NULL;
    PyThread_acquire_lock(list_lock, WAIT_LOCK);
    for (struct deferred **link = &first_deferred; *link;) {
        struct deferred *entry = *link;
        gl_greenlet *record = entry->greenlet->pimpl->record;
        /* Ours; or its thread has exited (anybody may release those). */
        if (gl_is_mine(record) || gl_kill(record) == 0) {
            *link = entry->next;
            entry->next = mine;
            mine = entry;
            atomic_fetch_sub(&deferred_count, 1);
        } else {
            link = &entry->next;
        }
    }
    PyThread_release_lock(list_lock);
    while (mine) {
        struct deferred *next = mine->next;
        PyGreenlet *greenlet = mine->greenlet;
        PyMem_RawFree(mine);
        /* Dropping the list's reference deallocates it here, in its
         * thread, which kills it if it was suspended. */
        Py_DECREF(greenlet);
        mine = next;
    }
}
