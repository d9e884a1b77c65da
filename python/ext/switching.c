/*
 * switching.c -- a Python-level switch on the engine: what travels with it
 * (arguments, return values, exceptions), the hooks that move interpreter
 * state (through cpython_compat.c), the life of a greenlet's run function,
 * and killing a suspended greenlet.
 *
 * Messages: gl_message.value is a new reference handed to the receiver;
 * gl_message.thrown carries the GL_PY_* flags of binding.h. A sender always
 * sends its positional and keyword arguments; the receiver shapes them: a
 * greenlet starting calls run(*args, **kwargs), a resumed one gets args[0],
 * args, kwargs, or (args, kwargs), as greenlet has always done.
 *
 * Object lifetime: the running greenlet's object is held by this thread
 * (thread_binding.current). Nothing may be released inside the switch,
 * since a release can run arbitrary code, so the hooks only move
 * references; the greenlet that resumes releases what the switch left over
 * (finish_switch) before it runs any Python code.
 */
#include "binding.h"
#include "glinspect.h"

struct thread_binding {
    PyGreenlet *current;      /* strong: the running greenlet */
    PyGreenlet *main;         /* strong: this thread's main greenlet */
    PyGreenlet *to_release;   /* strong: the previous current, to drop */
    PyGreenlet *trace_origin; /* borrowed until finish_switch: the origin */
    int trace_thrown;
    int tracing;              /* the outgoing greenlet's trace flag */
    PyObject *trace_function; /* strong, or NULL: greenlet.settrace's */
};

static __thread struct thread_binding binding;

static gl_py_impl *impl_of(gl_greenlet *record)
{
    return ((PyGreenlet *)gl_binding(record))->pimpl;
}

static void save_hook(gl_greenlet *origin, void *context)
{
    (void)context;
    gl_py_state_save(_PyThreadState_UncheckedGet(), &impl_of(origin)->state,
                     &binding.tracing);
}

static void restore_hook(gl_greenlet *target, void *context)
{
    (void)context;
    PyGreenlet *object = gl_binding(target);
    gl_py_state_restore(_PyThreadState_UncheckedGet(), &object->pimpl->state,
                        binding.tracing);
    if (binding.current != object) {
        binding.to_release = binding.current;
        Py_INCREF(object);
        binding.current = object;
    }
}

static void observe_hook(gl_greenlet *origin, gl_greenlet *target,
                         int thrown, void *context)
{
    (void)target;
    (void)context;
    binding.trace_origin = gl_binding(origin);
    binding.trace_thrown = thrown & GL_PY_THROW;
}

int gl_py_switching_init(void)
{
    static const gl_runtime_hooks hooks = {save_hook, restore_hook,
                                           observe_hook, NULL};
    gl_set_runtime_hooks(&hooks);
    return 0;
}

PyObject *gl_py_trace_function(void)
{
    return binding.trace_function;
}

void gl_py_set_trace_function(PyObject *function)
{
    Py_XINCREF(function);
    Py_XSETREF(binding.trace_function, function);
}

/* In the greenlet that has just resumed, before it runs Python code: call
 * the trace function, then drop what the switch left over. Returns 0, or -1
 * with an exception (from the trace function) set. */
static int finish_switch(void)
{
    int result = 0;
    /* Taken first: a tracer that switches away and back must not find it. */
    PyGreenlet *leftover = binding.to_release;
    binding.to_release = NULL;
    PyGreenlet *origin = binding.trace_origin; /* alive: leftover holds it */
    binding.trace_origin = NULL;
    PyObject *tracer = binding.trace_function;
    if (tracer && origin) {
        PyObject *saved_type, *saved_value, *saved_traceback;
        PyErr_Fetch(&saved_type, &saved_value, &saved_traceback);
        Py_INCREF(tracer);
        PyObject *outcome = PyObject_CallFunction(
            tracer, "s(OO)", binding.trace_thrown ? "throw" : "switch",
            (PyObject *)origin, (PyObject *)binding.current);
        Py_DECREF(tracer);
        if (outcome) {
            Py_DECREF(outcome);
            PyErr_Restore(saved_type, saved_value, saved_traceback);
        } else {
            Py_XDECREF(saved_type);
            Py_XDECREF(saved_value);
            Py_XDECREF(saved_traceback);
            result = -1;
        }
    }
    Py_XDECREF(leftover);
    gl_py_release_deferred();
    if (gl_watch_active()) /* a saved region may have moved: the watches */
        gl_watch_refresh();
    return result;
}

/* ------------------------------------------------------- main greenlets */

static PyGreenlet *new_main_greenlet(void)
{
    gl_greenlet *record = gl_main();
    if (!record) {
        PyErr_NoMemory();
        return NULL;
    }
    PyGreenlet *main = (PyGreenlet *)PyGreenlet_Type.tp_alloc(&PyGreenlet_Type, 0);
    if (!main)
        return NULL;
    main->pimpl = PyMem_Calloc(1, sizeof *main->pimpl);
    if (!main->pimpl) {
        Py_DECREF(main);
        return (PyGreenlet *)PyErr_NoMemory();
    }
    gl_hold(record); /* the object may outlive the thread */
    main->pimpl->record = record;
    main->pimpl->is_main = 1;
    main->pimpl->state.started = 1;
    main->pimpl->thread_ident = PyThread_get_thread_ident();
    gl_set_binding(record, main);
    return main;
}

/* The suspended greenlets of the calling thread, as new references, in an
 * array that the caller frees; *count gets their number. */
struct collection {
    uint64_t thread_serial;
    PyGreenlet **greenlets;
    size_t count, capacity;
};

static int collect_suspended(const gl_greenlet_info *info, void *context)
{
    struct collection *c = context;
    if (info->thread_serial != c->thread_serial || info->is_main ||
        info->state != GL_STATE_SUSPENDED || !info->binding)
        return 0;
    if (c->count == c->capacity) {
        size_t capacity = c->capacity ? 2 * c->capacity : 16;
        PyGreenlet **grown =
            PyMem_RawRealloc(c->greenlets, capacity * sizeof *grown);
        if (!grown)
            return 1; /* kill those we have */
        c->greenlets = grown;
        c->capacity = capacity;
    }
    c->greenlets[c->count++] = info->binding;
    return 0;
}

/* Raises GreenletExit in every suspended greenlet of the thread, so that
 * their frames unwind (finally blocks run, references are dropped) while
 * the thread can still run them: once it is gone, nothing can. */
static void kill_suspended_greenlets(void)
{
    gl_greenlet_info main_info;
    gl_greenlet_get_info(binding.main->pimpl->record, &main_info);
    struct collection c = {main_info.thread_serial, NULL, 0, 0};
    /* References are taken right after the walk (which holds the registry
     * lock), before anything can allocate and so run deallocations: the
     * pointers are valid then, since objects clear them when they go. */
    gl_registry_walk(NULL, collect_suspended, &c);
    for (size_t i = 0; i < c.count; i++) {
        if (Py_REFCNT(c.greenlets[i]) > 0) /* 0: being deallocated */
            Py_INCREF(c.greenlets[i]);
        else
            c.greenlets[i] = NULL;
    }
    for (size_t i = 0; i < c.count; i++) {
        PyGreenlet *g = c.greenlets[i];
        if (!g)
            continue;
        if (gl_state_of(g->pimpl->record) == GL_STATE_SUSPENDED &&
            gl_py_kill(g) < 0)
            PyErr_WriteUnraisable((PyObject *)g);
        Py_DECREF(g);
    }
    PyMem_RawFree(c.greenlets);
}

/* When the thread's Python state is cleared (the thread ends, or the
 * interpreter finalizes), kill its suspended greenlets (unless the
 * interpreter is exiting) and drop what the thread held. Runs in that thread, with the thread state still usable (its
 * dict is the first thing cleared). */
static void forget_thread(PyObject *capsule)
{
    /* CPython also clears other threads' states from one thread (after
     * fork, at exit): then there is nothing of ours to do here. */
    if (PyCapsule_GetPointer(capsule, "greenlet.thread") != &binding)
        return;
    PyThreadState *tstate = _PyThreadState_UncheckedGet();
    gl_py_release_deferred();
    /* Not at interpreter exit, where greenlets (gevent's hub) stay
     * suspended, as with greenlet; their memory goes with the process. */
    if (binding.main && binding.current == binding.main &&
        !_Py_IsFinalizing()) {
        kill_suspended_greenlets();
        gl_py_drop_recreated_thread_dict(tstate);
    }
    PyGreenlet *current = binding.current, *main = binding.main;
    PyObject *tracer = binding.trace_function;
    binding.current = binding.main = NULL;
    binding.trace_function = NULL;
    Py_XDECREF(current);
    Py_XDECREF(main);
    Py_XDECREF(tracer);
    gl_py_thread_ends(tstate);
}

static int watch_thread_end(void)
{
    PyObject *thread_dict = PyThreadState_GetDict();
    if (!thread_dict)
        return 0; /* no thread state dict: nothing will tell us */
    PyObject *capsule = PyCapsule_New(&binding, "greenlet.thread", forget_thread);
    if (!capsule)
        return -1;
    /* Never replace a capsule already there: replacing would run its
     * destructor. */
    PyObject *key = PyUnicode_FromString("greenlet.thread");
    PyObject *kept = key ? PyDict_SetDefault(thread_dict, key, capsule) : NULL;
    Py_XDECREF(key);
    Py_DECREF(capsule);
    return kept ? 0 : -1;
}

PyGreenlet *gl_py_current(void)
{
    if (binding.current)
        return binding.current;
    PyGreenlet *main = new_main_greenlet();
    if (!main)
        return NULL;
    Py_INCREF(main);
    binding.main = main;
    binding.current = main;
    if (watch_thread_end() < 0)
        return NULL;
    return main;
}

/* --------------------------------------------------------------- messages */

/* What a resumed greenlet's switch() returns, from what it was sent.
 * Steals `payload`. */
static PyObject *shape_switch_result(PyObject *payload, int flags)
{
    if (flags & GL_PY_WITH_KEYWORDS) {
        PyObject *args = PyTuple_GET_ITEM(payload, 0);
        if (PyTuple_GET_SIZE(args) == 0) {
            PyObject *kwargs = PyTuple_GET_ITEM(payload, 1);
            Py_INCREF(kwargs);
            Py_DECREF(payload);
            return kwargs;
        }
        return payload; /* (args, kwargs) */
    }
    if (PyTuple_GET_SIZE(payload) == 1) {
        PyObject *only = PyTuple_GET_ITEM(payload, 0);
        Py_INCREF(only);
        Py_DECREF(payload);
        return only;
    }
    return payload;
}

/* Raises the (type, value, traceback) of a thrown payload. Steals it. */
static void raise_thrown(PyObject *payload)
{
    PyObject *type = PyTuple_GET_ITEM(payload, 0);
    PyObject *value = PyTuple_GET_ITEM(payload, 1);
    PyObject *traceback = PyTuple_GET_ITEM(payload, 2);
    Py_INCREF(type);
    Py_INCREF(value);
    Py_INCREF(traceback);
    Py_DECREF(payload);
    if (value == Py_None) {
        Py_DECREF(value);
        value = NULL;
    }
    if (traceback == Py_None) {
        Py_DECREF(traceback);
        traceback = NULL;
    }
    PyErr_Restore(type, value, traceback);
}

/* The pending exception as a thrown payload (new reference), or NULL. */
static PyObject *fetch_thrown(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *payload = PyTuple_Pack(3, type, value ? value : Py_None,
                                     traceback ? traceback : Py_None);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return payload;
}

/* ------------------------------------------------------------- switching */

static PyObject *raise_engine_error(int code)
{
    if (code == GL_ENOMEM)
        return PyErr_NoMemory();
    if (code == GL_EWRONGTHREAD || code == GL_ETHREADEXITED)
        PyErr_SetString(PyExc_GreenletError,
                        "cannot switch to a different thread");
    else
        PyErr_Format(PyExc_GreenletError, "cannot switch: %s",
                     gl_strerror(code));
    return NULL;
}

/* Sends `payload` (stolen) with `flags` to `target` or, if it is dead, to
 * its nearest live ancestor, and returns what comes back. */
static PyObject *send(PyGreenlet *target, PyObject *payload, int flags)
{
    if (!payload)
        return NULL;
    PyGreenlet *current = gl_py_current();
    if (!current) {
        Py_DECREF(payload);
        return NULL;
    }
    while (gl_state_of(target->pimpl->record) == GL_STATE_DEAD &&
           target->pimpl->parent)
        target = target->pimpl->parent;
    gl_py_prepare_switch(_PyThreadState_UncheckedGet());
    gl_message reply;
    int error = gl_switch(target->pimpl->record, (gl_message){payload, flags},
                          &reply);
    if (error) {
        Py_DECREF(payload);
        return raise_engine_error(error);
    }
    if (finish_switch() < 0) {
        Py_DECREF(reply.value);
        return NULL;
    }
    if (reply.thrown & GL_PY_THROW) {
        raise_thrown(reply.value);
        return NULL;
    }
    return shape_switch_result(reply.value, reply.thrown);
}

PyObject *gl_py_switch(PyGreenlet *target, PyObject *args, PyObject *kwargs)
{
    if (kwargs && PyDict_GET_SIZE(kwargs) > 0)
        return send(target, PyTuple_Pack(2, args, kwargs),
                    GL_PY_WITH_KEYWORDS);
    Py_INCREF(args);
    return send(target, args, 0);
}

PyObject *gl_py_throw(PyGreenlet *target, PyObject *type, PyObject *value,
                      PyObject *traceback)
{
    if (traceback != Py_None && !PyTraceBack_Check(traceback)) {
        PyErr_SetString(PyExc_TypeError,
                        "throw() third argument must be a traceback object");
        return NULL;
    }
    if (PyExceptionInstance_Check(type)) {
        if (value != Py_None) {
            PyErr_SetString(PyExc_TypeError,
                            "instance exception may not have a separate value");
            return NULL;
        }
        value = type;
        type = (PyObject *)Py_TYPE(type);
    } else if (!PyExceptionClass_Check(type)) {
        PyErr_Format(PyExc_TypeError,
                     "exceptions must be classes, or instances, not %s",
                     Py_TYPE(type)->tp_name);
        return NULL;
    }
    /* A class is instantiated on the receiving side, when it is raised. */
    return send(target, PyTuple_Pack(3, type, value, traceback), GL_PY_THROW);
}

/* --------------------------------------------------- a greenlet's whole life */

/* What the run function's outcome sends to the parent: its return value;
 * for GreenletExit, the exception object itself (the greenlet was killed,
 * which is a normal end); any other exception is thrown on. */
static gl_message outcome_message(PyObject *result)
{
    if (!result && PyErr_ExceptionMatches(PyExc_GreenletExit)) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        result = value ? value : Py_None;
        Py_INCREF(result);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
    }
    if (result) {
        PyObject *payload = PyTuple_Pack(1, result);
        Py_DECREF(result);
        if (payload)
            return (gl_message){payload, 0};
    }
    return (gl_message){fetch_thrown(), GL_PY_THROW};
}

static PyObject *call_run(PyGreenlet *self, gl_message first)
{
    PyObject *run = self->pimpl->run;
    self->pimpl->run = NULL; /* gone once started */
    if (!run)
        run = PyObject_GetAttrString((PyObject *)self, "run");
    if (first.thrown & GL_PY_THROW) {
        Py_XDECREF(run);
        PyErr_Clear();
        raise_thrown(first.value);
        return NULL;
    }
    PyObject *args = first.value, *kwargs = NULL;
    if (first.thrown & GL_PY_WITH_KEYWORDS) {
        args = PyTuple_GET_ITEM(first.value, 0);
        kwargs = PyTuple_GET_ITEM(first.value, 1);
    }
    PyObject *result = run ? PyObject_Call(run, args, kwargs) : NULL;
    Py_XDECREF(run);
    Py_DECREF(first.value);
    return result;
}

gl_message gl_py_run(void *argument, gl_message first)
{
    PyGreenlet *self = argument; /* held by binding.current while it runs */
    PyThreadState *tstate = _PyThreadState_UncheckedGet();
    gl_py_c_frame_storage c_frame_record;
    gl_py_enter_new_greenlet(tstate, &c_frame_record);
    PyObject *result;
    if (finish_switch() < 0) { /* the tracer raised: run never starts */
        Py_CLEAR(self->pimpl->run);
        Py_DECREF(first.value);
        result = NULL;
    } else {
        result = call_run(self, first);
    }
    gl_message outcome = outcome_message(result);
    if (!outcome.value) { /* not even the exception could be packed */
        PyErr_Clear();
        Py_INCREF(Py_None);
        outcome = (gl_message){PyTuple_Pack(1, Py_None), 0};
        Py_DECREF(Py_None);
    }
    gl_py_leave_finished_greenlet(tstate);
    return outcome;
}

int gl_py_kill(PyGreenlet *greenlet)
{
    PyGreenlet *current = gl_py_current();
    if (!current)
        return -1;
    /* The result must come back here, whoever the parent is. */
    Py_INCREF(current);
    Py_XSETREF(greenlet->pimpl->parent, current);
    int error = gl_set_parent(greenlet->pimpl->record, current->pimpl->record);
    if (error) {
        raise_engine_error(error);
        return -1;
    }
    PyObject *result =
        gl_py_throw(greenlet, PyExc_GreenletExit, Py_None, Py_None);
    if (!result)
        return -1;
    Py_DECREF(result);
    return 0;
}
