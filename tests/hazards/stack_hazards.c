/*
 * stack_hazards.c -- a CPython extension that makes the hazard of stack
 * copying on purpose, the ways extensions meet it, for the hazard audit's
 * tests (tests/python/test_hazard_audit.py builds it):
 *
 *   keep_and_call(f)      a global keeps a pointer to a stack buffer while
 *                         f runs (and switches away): stack_hazards_kept
 *   register_and_call(f)  a stack-allocated callback record is registered
 *                         in a global table while f runs, for fire() to
 *                         call later, from whatever greenlet: the table is
 *                         stack_hazards_registry
 *   fire()                calls the registered callbacks, which write into
 *                         their records: through a stale pointer if the
 *                         registering greenlet is suspended
 *   keep_in_heap_and_call(f, size, from_thread, freed)
 *                         a malloc'd record of `size` bytes (allocated by
 *                         another thread, so in another arena, if
 *                         from_thread) keeps a pointer to a stack buffer,
 *                         16 bytes in, while f runs; with `freed`, the
 *                         record is freed before f runs, leaving the stale
 *                         pointer in free memory; heap_record() is its
 *                         address meanwhile
 *   write_kept()          stores through stack_hazards_kept (from
 *                         whatever greenlet calls it)
 *   touch_registered()    stores through each registered record
 *   lend_to_waiting_worker(f)
 *                         a worker thread gets a stack buffer's address
 *                         and stores into it once release_worker() is
 *                         called, whether its owner is suspended then or
 *                         not; f runs meanwhile
 * The last three store the byte that is there already: through a stale
 * pointer a real store would corrupt the test process's own stack, and
 * the watch catches a store whatever it stores.
 *   register_watched_and_call(f)
 *                         as register_and_call, and registers the
 *                         record's address for watching (greenlet.h:
 *                         PyGreenlet_WatchStack)
 *   lend_to_worker(f)     a worker thread gets a stack buffer's address
 *                         and keeps it on its own stack while f runs;
 *                         it waits to be told to write (in the buffer,
 *                         while its owner runs again) or to quit
 *
 * Its globals are static, as in most extensions: the audit names them
 * from the file's own symbol table (.symtab), which dladdr cannot see.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <greenlet.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *stack_hazards_kept;

struct callback_record {
    void (*callback)(struct callback_record *record);
    long calls;
    char padding[48];
};

static struct callback_record *stack_hazards_registry[4];

static void count_a_call(struct callback_record *record)
{
    record->calls++;
}

static PyObject *keep_and_call(PyObject *module, PyObject *function)
{
    (void)module;
    char buffer[64];
    memset(buffer, 'k', sizeof buffer);
    stack_hazards_kept = buffer;
    PyObject *result = PyObject_CallNoArgs(function);
    stack_hazards_kept = NULL;
    return result;
}

/* A stack record registered while `function` runs, for fire(); with
 * `watched`, its address registered for watching too. */
static PyObject *register_during(PyObject *function, int watched)
{
    struct callback_record record = {count_a_call, 0, {0}};
    size_t slot = 0;
    while (slot < 4 && stack_hazards_registry[slot])
        slot++;
    if (slot == 4)
        return PyErr_Format(PyExc_RuntimeError, "the registry is full");
    if (watched &&
        (!PyGreenlet_WatchImport() || PyGreenlet_WatchStack(&record.calls) < 0))
        return NULL;
    stack_hazards_registry[slot] = &record;
    PyObject *result = PyObject_CallNoArgs(function);
    stack_hazards_registry[slot] = NULL;
    if (watched)
        PyGreenlet_UnwatchStack(&record.calls);
    if (!result)
        return NULL;
    Py_DECREF(result);
    return PyLong_FromLong(record.calls);
}

static PyObject *register_and_call(PyObject *module, PyObject *function)
{
    (void)module;
    return register_during(function, 0);
}

static PyObject *write_kept(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    if (!stack_hazards_kept)
        Py_RETURN_FALSE;
    volatile char *kept = stack_hazards_kept;
    kept[0] = kept[0];
    Py_RETURN_TRUE;
}

static PyObject *touch_registered(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    long touched = 0;
    for (size_t slot = 0; slot < 4; slot++)
        if (stack_hazards_registry[slot]) {
            volatile long *calls = &stack_hazards_registry[slot]->calls;
            *calls = *calls;
            touched++;
        }
    return PyLong_FromLong(touched);
}

/* register_and_call, with the record registered for watching. */
static PyObject *register_watched_and_call(PyObject *module,
                                           PyObject *function)
{
    (void)module;
    return register_during(function, 1);
}

static PyObject *fire(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    long fired = 0;
    for (size_t slot = 0; slot < 4; slot++)
        if (stack_hazards_registry[slot]) {
            stack_hazards_registry[slot]->callback(
                stack_hazards_registry[slot]);
            fired++;
        }
    return PyLong_FromLong(fired);
}

/* ------------------------------------------------------------ heap */

static char *heap_record; /* the record keep_in_heap_and_call made */

struct allocation_order {
    size_t size;
    char *record;
};

static void *allocate_record(void *argument)
{
    struct allocation_order *order = argument;
    order->record = calloc(1, order->size);
    return NULL;
}

static PyObject *keep_in_heap_and_call(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *function;
    Py_ssize_t size;
    int from_thread, freed;
    if (!PyArg_ParseTuple(args, "Onpp", &function, &size, &from_thread,
                          &freed))
        return NULL;
    if (size < 32)
        return PyErr_Format(PyExc_ValueError, "at least 32 bytes");
    char buffer[64];
    memset(buffer, 'm', sizeof buffer);
    struct allocation_order order = {(size_t)size, NULL};
    pthread_t thread;
    if (!from_thread)
        allocate_record(&order);
    else if (pthread_create(&thread, NULL, allocate_record, &order) == 0)
        pthread_join(thread, NULL);
    if (!order.record)
        return PyErr_NoMemory();
    /* 16 bytes in: glibc's thread cache writes over the first two words
     * of a freed chunk, not this one. */
    char **slot = (char **)(order.record + 16);
    *slot = buffer;
    heap_record = order.record;
    if (freed) {
        free(order.record);
        heap_record = NULL;
    }
    PyObject *result = PyObject_CallNoArgs(function);
    if (!freed) {
        *slot = NULL;
        free(order.record);
        heap_record = NULL;
    }
    return result;
}

static PyObject *heap_record_address(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromVoidPtr(heap_record);
}

/* ---------------------------------------------------------- threads */

/* The waiting worker: stores into the buffer it was lent once
 * release_worker() is called -- by then the test has found the pointer in
 * its frame and watched the address, however long that took -- or after
 * a minute, so that a test that fails first never hangs its process. */
static sem_t worker_go;
static pthread_once_t worker_go_once = PTHREAD_ONCE_INIT;

static void make_worker_go(void)
{
    sem_init(&worker_go, 0, 0);
}

__attribute__((noinline)) static void *waiting_worker(void *argument)
{
    volatile char *volatile buffer = argument;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 60;
    while (sem_timedwait(&worker_go, &deadline) != 0 && errno == EINTR)
        continue;
    buffer[0] = buffer[0];
    return NULL;
}

static PyObject *release_worker(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    pthread_once(&worker_go_once, make_worker_go);
    sem_post(&worker_go);
    Py_RETURN_NONE;
}

static PyObject *lend_to_waiting_worker(PyObject *module, PyObject *function)
{
    (void)module;
    pthread_once(&worker_go_once, make_worker_go);
    char buffer[64];
    memset(buffer, 'l', sizeof buffer);
    pthread_t thread;
    if (pthread_create(&thread, NULL, waiting_worker, buffer) != 0)
        return PyErr_Format(PyExc_RuntimeError, "no worker thread");
    PyObject *result = PyObject_CallNoArgs(function);
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    if (!result)
        return NULL;
    Py_DECREF(result);
    return PyBytes_FromStringAndSize(buffer, 4);
}

/* The worker: the buffer's address stays in its frame while it waits on
 * the pipe for one byte: 'w' writes into the buffer, anything else
 * quits. */
struct lent {
    int pipe[2];
};

static void *worker(void *argument)
{
    struct lent *lent = argument;
    volatile char *volatile buffer;
    if (read(lent->pipe[0], (void *)&buffer, sizeof buffer) !=
        sizeof buffer)
        return NULL;
    char order = 0;
    if (read(lent->pipe[0], &order, 1) == 1 && order == 'w')
        buffer[0] = 'w';
    return NULL;
}

static PyObject *lend_to_worker(PyObject *module, PyObject *function)
{
    (void)module;
    char buffer[64];
    memset(buffer, 'l', sizeof buffer);
    /* On the heap: only the buffer's address is the hazard here. */
    struct lent *lent = PyMem_RawMalloc(sizeof *lent);
    pthread_t thread;
    if (!lent)
        return PyErr_NoMemory();
    if (pipe(lent->pipe) != 0) {
        PyMem_RawFree(lent);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (pthread_create(&thread, NULL, worker, lent) != 0) {
        close(lent->pipe[0]);
        close(lent->pipe[1]);
        PyMem_RawFree(lent);
        return PyErr_Format(PyExc_RuntimeError, "no worker thread");
    }
    char *address = buffer;
    ssize_t sent = write(lent->pipe[1], &address, sizeof address);
    PyObject *result = PyObject_CallNoArgs(function);
    /* Back on our stack: the worker may write now, and then it quits. */
    char order = 'w';
    if (sent == sizeof address && write(lent->pipe[1], &order, 1) != 1)
        sent = -1;
    Py_BEGIN_ALLOW_THREADS
    pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    close(lent->pipe[0]);
    close(lent->pipe[1]);
    PyMem_RawFree(lent);
    if (!result)
        return NULL;
    Py_DECREF(result);
    return PyBytes_FromStringAndSize(buffer, 4);
}

static PyMethodDef methods[] = {
    {"keep_and_call", keep_and_call, METH_O, NULL},
    {"register_and_call", register_and_call, METH_O, NULL},
    {"fire", fire, METH_NOARGS, NULL},
    {"keep_in_heap_and_call", keep_in_heap_and_call, METH_VARARGS, NULL},
    {"heap_record", heap_record_address, METH_NOARGS, NULL},
    {"lend_to_worker", lend_to_worker, METH_O, NULL},
    {"lend_to_waiting_worker", lend_to_waiting_worker, METH_O, NULL},
    {"release_worker", release_worker, METH_NOARGS, NULL},
    {"write_kept", write_kept, METH_NOARGS, NULL},
    {"touch_registered", touch_registered, METH_NOARGS, NULL},
    {"register_watched_and_call", register_watched_and_call, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT,
                                        "stack_hazards", NULL, -1, methods};

PyMODINIT_FUNC PyInit_stack_hazards(void)
{
    return PyModule_Create(&definition);
}
