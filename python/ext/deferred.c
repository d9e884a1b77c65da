/*
 * deferred.c -- greenlets dropped in a thread other than their own.
 *
 * Only a greenlet's own thread may kill it (its frames must unwind on its
 * stack) or release its engine record. When the last reference to a
 * greenlet goes away in another thread, while its own thread lives, the
 * object is kept alive on a process-wide list instead; its thread takes it
 * back at its next switch and releases it there, which kills it if it was
 * suspended. Cost on the switch path: one atomic load.
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

int gl_py_deferred_init(void)
{
    list_lock = PyThread_allocate_lock();
    if (!list_lock) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

int gl_py_defer_release(PyGreenlet *greenlet)
{
    struct deferred *entry = PyMem_RawMalloc(sizeof *entry);
    if (!entry)
        return -1;
    Py_SET_REFCNT(greenlet, 1); /* now the list's */
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
        if (gl_is_mine(entry->greenlet->pimpl->record)) {
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
        Py_DECREF(mine->greenlet); /* deallocated here, in its thread */
        PyMem_RawFree(mine);
        mine = next;
    }
}
