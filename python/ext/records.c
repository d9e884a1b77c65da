/*
 * records.c -- the engine's registry as Python data: greenlet._greenlet.
 * _records() returns one dict per greenlet record of every thread, as the
 * engine's registry walk copies them, with the greenlet object where one
 * exists; _threads() one dict per thread record (switches, heap-held
 * bytes and their peak); _thread_idents() maps the native id of each
 * thread of the interpreter to its threading ident, for threads that the
 * threading module does not list (thread pools that start their own).
 * greenlet.inspect builds its snapshots on them.
 */
#include "binding.h"

#include <string.h>

static const char *const state_names[] = {"new", "running", "suspended",
                                          "dead"};

/* A growing array of copies made under the registry lock, where only raw
 * memory functions may be used (nothing that can run Python code). */
struct copies {
    void *items;
    size_t count, capacity, item_size;
    int failed;
};

/* Frees copies of records, zeroed first: they hold stack addresses,
 * which the hazard audit would find in memory reused by an allocation
 * that does not overwrite all of it. */
static void scrub_and_free(struct copies *c)
{
    if (c->items)
        explicit_bzero(c->items, c->capacity * c->item_size);
    PyMem_RawFree(c->items);
}

static int append_copy(struct copies *c, const void *item)
{
    if (c->count == c->capacity) { /* not realloc: it would not scrub */
        size_t capacity = c->capacity ? 2 * c->capacity : 64;
        void *grown = PyMem_RawMalloc(capacity * c->item_size);
        if (!grown) {
            c->failed = 1;
            return 1; /* stops the walk */
        }
        if (c->items)
            memcpy(grown, c->items, c->count * c->item_size);
        scrub_and_free(c);
        c->items = grown;
        c->capacity = capacity;
    }
    memcpy((char *)c->items + c->count++ * c->item_size, item, c->item_size);
    return 0;
}

static int copy_record(const gl_greenlet_info *info, void *context)
{
    return append_copy(context, info);
}

static int copy_thread(const gl_thread_info *info, void *context)
{
    return append_copy(context, info);
}

/* r->binding must be a reference the caller holds, or NULL. */
static PyObject *record_as_dict(const gl_greenlet_info *r)
{
    PyObject *greenlet = r->binding ? (PyObject *)r->binding : Py_None;
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:L,s:s,s:O,s:K,s:K,s:K,s:n,s:n,s:n,s:K,s:K,s:K,s:O,s:O}",
        "id",
        (unsigned long long)r->id, "parent_id",
        (unsigned long long)r->parent_id, "thread",
        (unsigned long long)r->thread_serial, "thread_native_id",
        (long long)r->thread_os_id, "state", state_names[r->state], "main",
        r->is_main ? Py_True : Py_False, "stack_pointer",
        (unsigned long long)r->stack_pointer, "stack_stop",
        (unsigned long long)r->stack_stop, "thread_stack_low",
        (unsigned long long)r->thread_stack_low, "saved_bytes",
        (Py_ssize_t)r->saved_bytes, "saved_bytes_peak",
        (Py_ssize_t)r->saved_bytes_peak, "heap_bytes",
        (Py_ssize_t)r->heap_capacity, "switches",
        (unsigned long long)r->switches, "created_ns",
        (unsigned long long)r->created_ns, "last_ran_serial",
        (unsigned long long)r->last_ran_serial, "greenlet", greenlet,
        "hazard", gl_py_hazard_flagged(r->id) ? Py_True : Py_False);
}

/* Right after the walk, before anything can allocate (and so run the
 * collector, finalizers, deallocations), take a reference to each bound
 * object: the pointers are valid now, since objects clear them when they
 * go away, which needs the GIL we hold. An object whose count is 0 is in
 * the middle of its deallocation: it is left out. */
static void hold_bound_objects(gl_greenlet_info *records, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        PyObject *object = records[i].binding;
        if (object && Py_REFCNT(object) > 0)
            Py_INCREF(object);
        else
            records[i].binding = NULL;
    }
}

struct suspended {
    uint64_t thread_serial;
    struct copies pointers;
};

static int note_suspended(const gl_greenlet_info *info, void *context)
{
    struct suspended *s = context;
    if (info->state != GL_STATE_SUSPENDED || !info->binding ||
        (s->thread_serial && info->thread_serial != s->thread_serial))
        return 0;
    return append_copy(&s->pointers, &info->binding);
}

PyGreenlet **gl_py_suspended_greenlets(uint64_t thread_serial, size_t *count)
{
    struct suspended s = {thread_serial, {NULL, 0, 0, sizeof(PyObject *), 0}};
    gl_registry_walk(NULL, note_suspended, &s);
    PyObject **objects = s.pointers.items;
    /* As hold_bound_objects, right after the walk. */
    size_t kept = 0;
    for (size_t i = 0; i < s.pointers.count; i++)
        if (Py_REFCNT(objects[i]) > 0) /* 0: being deallocated */
            objects[kept++] = Py_NewRef(objects[i]);
    *count = kept;
    return (PyGreenlet **)objects;
}

PyObject *gl_py_records(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    struct copies c = {NULL, 0, 0, sizeof(gl_greenlet_info), 0};
    gl_registry_walk(NULL, copy_record, &c);
    gl_greenlet_info *records = c.items;
    hold_bound_objects(records, c.count);
    PyObject *list = c.failed ? PyErr_NoMemory() : PyList_New(0);
    for (size_t i = 0; list && i < c.count; i++) {
        PyObject *record = record_as_dict(&records[i]);
        if (!record || PyList_Append(list, record) < 0)
            Py_CLEAR(list);
        Py_XDECREF(record);
    }
    for (size_t i = 0; i < c.count; i++)
        Py_XDECREF((PyObject *)records[i].binding);
    scrub_and_free(&c);
    return list;
}

PyObject *gl_py_threads(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    struct copies c = {NULL, 0, 0, sizeof(gl_thread_info), 0};
    gl_registry_walk(copy_thread, NULL, &c);
    const gl_thread_info *threads = c.items;
    PyObject *list = c.failed ? PyErr_NoMemory() : PyList_New(0);
    for (size_t i = 0; list && i < c.count; i++) {
        const gl_thread_info *t = &threads[i];
        PyObject *thread = Py_BuildValue(
            "{s:K,s:L,s:O,s:K,s:K,s:n,s:n,s:n}", "thread",
            (unsigned long long)t->serial, "native_id", (long long)t->os_id,
            "exited", t->exited ? Py_True : Py_False, "switches",
            (unsigned long long)t->switch_serial, "current_id",
            (unsigned long long)t->current_id, "saved_bytes",
            (Py_ssize_t)t->saved_bytes, "saved_bytes_peak",
            (Py_ssize_t)t->saved_bytes_peak, "greenlets",
            (Py_ssize_t)t->greenlets);
        if (!thread || PyList_Append(list, thread) < 0)
            Py_CLEAR(list);
        Py_XDECREF(thread);
    }
    PyMem_RawFree(c.items);
    return list;
}

PyObject *gl_py_thread_idents(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    PyObject *idents = PyDict_New();
    PyInterpreterState *interpreter = PyInterpreterState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(interpreter);
         idents && t; t = PyThreadState_Next(t)) {
        PyObject *native = PyLong_FromUnsignedLong(gl_py_native_thread_id(t));
        PyObject *ident = PyLong_FromUnsignedLong(t->thread_id);
        if (!native || !ident || PyDict_SetItem(idents, native, ident) < 0)
            Py_CLEAR(idents);
        Py_XDECREF(native);
        Py_XDECREF(ident);
    }
    return idents;
}
