/*
 * switching.c -- a Python-level switch on the engine: what travels with it
 * (arguments, return values, exceptions), the hooks that move interpreter
 * state (through cpython_compat.c), the life of a greenlet's run function,
 * greenlet.settrace's function, and killing a suspended greenlet.
 *
 * Messages: gl_message.value is a new reference handed to the receiver;
 * gl_message.thrown carries the GL_PY_* flags of binding.h. A sender always
 * sends its positional and keyword arguments; the receiver shapes them: a
 * greenlet starting calls run(*args, **kwargs), a resumed one gets args[0],
 * args, kwargs, or (args, kwargs), as greenlet has always done.
 *
 * Starting a greenlet: the switcher looks its `run` up (an attribute
 * lookup, so a subclass's method wins, and it may run any code), then
 * checks the switch again, since that code may have started the greenlet
 * or given it a parent of another thread; the new greenlet calls what was
 * looked up. A greenlet started by a child falling off its end has had no
 * switcher: it looks `run` up itself.
 *
 * Object lifetime: the running greenlet's object is held by this thread
 * (gl_py_this_thread.current). Nothing may be released inside the switch,
 * since a release can run arbitrary code, so the hooks only move
 * references; the greenlet that resumes takes what the switch left over
 * before it runs any Python code (take_arrival), and releases it after
 * (complete_arrival).
 */
#include "binding.h"
#include "glinspect.h"

static gl_py_impl *impl_of(gl_greenlet *record)
{
    return ((PyGreenlet *)gl_binding(record))->pimpl;
}

static void save_hook(gl_greenlet *origin, void *context)
{
    (void)context;
    gl_py_saved_state *state = &impl_of(origin)->state;
    gl_py_state_save(_PyThreadState_UncheckedGet(), state,
                     &gl_py_this_thread.tracing);
    state->call_top = gl_py_this_thread.call_top;
    state->call_keywords = gl_py_this_thread.call_keywords;
    gl_py_this_thread.call_top = gl_py_this_thread.call_keywords = NULL;
}

static void restore_hook(gl_greenlet *target, void *context)
{
    (void)context;
    gl_py_thread *t = &gl_py_this_thread;
    PyGreenlet *object = gl_binding(target);
    gl_py_state_restore(_PyThreadState_UncheckedGet(), &object->pimpl->state,
                        t->tracing);
    if (t->current != object) {
        t->to_release = t->current;
        Py_INCREF(object);
        t->current = object;
    }
}

static void observe_hook(gl_greenlet *origin, gl_greenlet *target,
                         int thrown, void *context)
{
    (void)target;
    (void)context;
    gl_py_this_thread.trace_origin = gl_binding(origin);
    gl_py_this_thread.trace_thrown = thrown & GL_PY_THROW;
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
    return gl_py_this_thread.trace_function;
}

void gl_py_set_trace_function(PyObject *function)
{
    Py_XINCREF(function);
    Py_XSETREF(gl_py_this_thread.trace_function, function);
}

/* ------------------------------------------------------------- arrival */

/* What a switch left for the greenlet that resumes: the previous current
 * (a reference to drop) and, for the trace function, the origin (kept
 * alive by that reference) and whether it was a throw. */
struct arrival {
    PyGreenlet *leftover;
    PyGreenlet *origin;
    int thrown;
};

/* Takes it, before any Python code of the resumed greenlet runs: code that
 * switched away first would have it overwritten. */
static struct arrival take_arrival(void)
{
    gl_py_thread *t = &gl_py_this_thread;
    struct arrival arrival = {t->to_release, t->trace_origin, t->trace_thrown};
    t->to_release = NULL;
    t->trace_origin = NULL;
    return arrival;
}

/* Calls the trace function as tracer(event, (origin, target)), with the
 * interpreter's own tracing and profiling off, as upstream does; a tracer
 * that raises is removed, and its exception is raised here. 0, or -1 with
 * the exception set. */
static int call_tracer(PyGreenlet *origin, int thrown)
{
    gl_py_thread *t = &gl_py_this_thread;
    PyObject *tracer = t->trace_function;
    if (!tracer || !origin)
        return 0;
    PyObject *saved_type, *saved_value, *saved_traceback;
    PyErr_Fetch(&saved_type, &saved_value, &saved_traceback);
    Py_INCREF(tracer);
    PyThreadState *tstate = _PyThreadState_UncheckedGet();
    gl_py_enter_tracing(tstate);
    PyObject *outcome =
        PyObject_CallFunction(tracer, "s(OO)", thrown ? "throw" : "switch",
                              (PyObject *)origin, (PyObject *)t->current);
    gl_py_leave_tracing(tstate);
    Py_DECREF(tracer);
    if (outcome) {
        Py_DECREF(outcome);
        PyErr_Restore(saved_type, saved_value, saved_traceback);
        return 0;
    }
    Py_XDECREF(saved_type);
    Py_XDECREF(saved_value);
    Py_XDECREF(saved_traceback);
    if (t->trace_function == tracer)
        gl_py_set_trace_function(NULL);
    return -1;
}

/* Then: the trace function, what the switch left over, the greenlets
 * other threads handed back, and the watches. 0, or -1 with an exception
 * (from the trace function) set. */
static int complete_arrival(struct arrival arrival)
{
    int result = call_tracer(arrival.origin, arrival.thrown);
    Py_XDECREF(arrival.leftover);
    gl_py_release_deferred();
    if (gl_watch_active()) /* a saved region may have moved: the watches */
        gl_watch_refresh();
    return result;
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

/* Packs (type, value, traceback), borrowed, as a thrown payload (a new
 * reference, or NULL). */
static PyObject *pack_thrown(PyObject *type, PyObject *value,
                             PyObject *traceback)
{
    return PyTuple_Pack(3, type, value ? value : Py_None,
                        traceback ? traceback : Py_None);
}

/* The pending exception as a thrown payload (new reference), or NULL. */
static PyObject *fetch_thrown(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *payload = pack_thrown(type, value, traceback);
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
    if (code == GL_EWRONGTHREAD)
        PyErr_SetString(PyExc_GreenletError,
                        "cannot switch to a different thread");
    else if (code == GL_ETHREADEXITED)
        PyErr_SetString(PyExc_GreenletError,
                        "cannot switch to a different thread (which happens "
                        "to have exited)");
    else
        PyErr_Format(PyExc_GreenletError, "cannot switch: %s",
                     gl_strerror(code));
    return NULL;
}

/* The greenlet a switch to `target` lands in: itself, or if it is dead,
 * its nearest ancestor that is not. Borrowed. */
static PyGreenlet *landing_greenlet(PyGreenlet *target)
{
    while (gl_state_of(target->pimpl->record) == GL_STATE_DEAD &&
           target->pimpl->parent)
        target = target->pimpl->parent;
    return target;
}

/* A greenlet that never ran takes its parent in the engine only when it
 * starts: until then its parent may be of another thread (upstream
 * allows that, and refuses the switch). 0, or -1 with an exception. */
static int adopt_parent(PyGreenlet *target)
{
    gl_greenlet *parent = target->pimpl->parent->pimpl->record;
    if (gl_parent(target->pimpl->record) == parent)
        return 0;
    int error = gl_set_parent(target->pimpl->record, parent);
    if (error == GL_EWRONGTHREAD && gl_thread_exited(parent))
        error = GL_ETHREADEXITED;
    if (error) {
        raise_engine_error(error);
        return -1;
    }
    return 0;
}

/* Looks up the run callable of `target`, which never ran, for its start
 * (pimpl->starting_run). The lookup may run any code: on return `target`
 * may have started, or been dropped by everything but the caller. 0, or
 * -1 with an exception set. */
static int look_up_run(PyGreenlet *target)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyObject *run = PyObject_GetAttrString((PyObject *)target, "run");
    if (!run) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        return -1;
    }
    PyErr_Restore(type, value, traceback);
    Py_XSETREF(target->pimpl->starting_run, run);
    return 0;
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
    Py_INCREF(target); /* code run by the lookup may drop it */
    PyObject *result = NULL;
    for (;;) {
        PyGreenlet *landing = landing_greenlet(target);
        Py_INCREF(landing);
        Py_SETREF(target, landing);
        if (gl_state_of(target->pimpl->record) != GL_STATE_NEW)
            break;
        if (look_up_run(target) < 0)
            goto failed;
        if (gl_state_of(target->pimpl->record) == GL_STATE_NEW)
            break;
        /* The lookup started it: this is a switch to a started one now. */
        Py_CLEAR(target->pimpl->starting_run);
    }
    if (target == current) { /* nothing moves; the tracer still hears */
        Py_DECREF(target);
        if (call_tracer(current, flags & GL_PY_THROW) < 0) {
            Py_DECREF(payload);
            return NULL;
        }
        if (flags & GL_PY_THROW) {
            raise_thrown(payload);
            return NULL;
        }
        return shape_switch_result(payload, flags);
    }
    if (gl_state_of(target->pimpl->record) == GL_STATE_NEW &&
        adopt_parent(target) < 0)
        goto failed;
    PyThreadState *tstate = _PyThreadState_UncheckedGet();
    if (gl_py_state_stranded(&target->pimpl->state, tstate) &&
        gl_is_mine(target->pimpl->record)) {
        PyErr_SetString(PyExc_GreenletError,
                        "cannot switch to a greenlet suspended under an "
                        "earlier thread state of this thread (that thread "
                        "state has been deleted: PyGILState_Release)");
        goto failed;
    }
    if (target->pimpl->forced_failure && gl_py_forced_failure(target) < 0)
        goto failed;
    gl_py_saved_state *stopping = &current->pimpl->state;
    if (gl_py_prepare_switch(tstate, stopping) < 0)
        goto failed;
    /* The reference taken for the lookup goes now, if others hold the
     * target (nothing runs before the engine makes it current): a
     * reference held on this C stack across the switch would never be
     * released if this greenlet's thread ended with it suspended. */
    int held = Py_REFCNT(target) == 1;
    if (!held)
        Py_DECREF(target);
    gl_message reply;
    int error = gl_switch(target->pimpl->record, (gl_message){payload, flags},
                          &reply);
    if (error) {
        gl_py_cancel_switch(stopping);
        raise_engine_error(error);
        if (!held)
            Py_INCREF(target); /* for `failed`, which drops it */
        goto failed;
    }
    struct arrival arrival = take_arrival(); /* before anything can run */
    if (held)
        Py_DECREF(target);
    if (complete_arrival(arrival) < 0) {
        Py_DECREF(reply.value);
        return NULL;
    }
    if (reply.thrown & GL_PY_THROW) {
        raise_thrown(reply.value);
        return NULL;
    }
    return shape_switch_result(reply.value, reply.thrown);

failed:
    if (gl_state_of(target->pimpl->record) == GL_STATE_NEW)
        Py_CLEAR(target->pimpl->starting_run);
    Py_DECREF(target);
    Py_DECREF(payload);
    return result;
}

PyObject *gl_py_switch(PyGreenlet *target, PyObject *args, PyObject *kwargs)
{
    if (kwargs && PyDict_GET_SIZE(kwargs) > 0) {
        PyObject *both = args ? PyTuple_Pack(2, args, kwargs) : NULL;
        Py_XDECREF(args);
        Py_DECREF(kwargs);
        return send(target, both, GL_PY_WITH_KEYWORDS);
    }
    Py_XDECREF(kwargs);
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
    /* The instance is made here, in the thrower, as upstream does: if its
     * constructor raises, that exception is the one thrown. */
    Py_INCREF(type);
    value = value == Py_None ? NULL : Py_NewRef(value);
    traceback = traceback == Py_None ? NULL : Py_NewRef(traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    PyObject *payload;
    int flags = GL_PY_THROW;
    if (gl_state_of(target->pimpl->record) == GL_STATE_DEAD &&
        PyErr_GivenExceptionMatches(type, PyExc_GreenletExit)) {
        /* A dead greenlet ends again: GreenletExit is its result. */
        payload = PyTuple_Pack(1, value ? value : Py_None);
        flags = 0;
    } else {
        payload = pack_thrown(type, value, traceback);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
    return send(target, payload, flags);
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

/* Calls `run` (stolen; NULL if its lookup failed, with the exception set)
 * with what the first switch sent (stolen), or raises what it threw. The
 * callable and its arguments are the greenlet's (impl->calling, not this
 * C frame's) while the call runs: a greenlet whose thread ends while it
 * is suspended in it never returns here, and releases them when freed. */
static PyObject *call_run(PyGreenlet *self, PyObject *run, gl_message first)
{
    if (first.thrown & GL_PY_THROW) {
        Py_XDECREF(run);
        PyErr_Clear();
        raise_thrown(first.value);
        return NULL;
    }
    gl_py_impl *impl = self->pimpl;
    impl->calling_run = run;
    impl->calling_arguments = first.value;
    PyObject *args = first.value, *kwargs = NULL;
    if (first.thrown & GL_PY_WITH_KEYWORDS) {
        args = PyTuple_GET_ITEM(first.value, 0);
        kwargs = PyTuple_GET_ITEM(first.value, 1);
    }
    PyObject *result = run ? PyObject_Call(run, args, kwargs) : NULL;
    Py_CLEAR(impl->calling_run);
    Py_CLEAR(impl->calling_arguments);
    return result;
}

/* Where an ending greenlet's outcome goes: the nearest ancestor that is
 * not dead, which starts with it if it never ran. That one's run is
 * looked up here, in the greenlet that ends, as upstream does; if that
 * fails, the failure replaces the outcome and goes on to the next
 * ancestor, and the one that could not start stays as it was. The
 * engine is told the way by the ending greenlet's parent in its record. */
static gl_message route_outcome(PyGreenlet *self, gl_message outcome)
{
    PyGreenlet *from = self->pimpl->parent;
    for (;;) {
        PyGreenlet *receiver = landing_greenlet(from);
        if (gl_state_of(receiver->pimpl->record) != GL_STATE_NEW)
            return outcome;
        Py_INCREF(receiver);
        int ready = receiver->pimpl->starting_run ||
                    look_up_run(receiver) == 0;
        if (ready && gl_state_of(receiver->pimpl->record) != GL_STATE_NEW) {
            Py_DECREF(receiver); /* the lookup started it */
            continue;
        }
        if (ready && adopt_parent(receiver) == 0) {
            gl_set_parent(self->pimpl->record, receiver->pimpl->record);
            Py_DECREF(receiver);
            return outcome;
        }
        Py_CLEAR(receiver->pimpl->starting_run);
        Py_DECREF(outcome.value);
        outcome = (gl_message){fetch_thrown(), GL_PY_THROW};
        from = receiver->pimpl->parent;
        gl_set_parent(self->pimpl->record, from->pimpl->record);
        Py_DECREF(receiver);
    }
}

gl_message gl_py_run(void *argument, gl_message first)
{
    PyGreenlet *self = argument; /* held by gl_py_this_thread while it runs */
    PyThreadState *tstate = _PyThreadState_UncheckedGet();
    gl_py_c_frame_storage c_frame_record;
    gl_py_enter_new_greenlet(tstate, &c_frame_record);
    struct arrival arrival = take_arrival();
    PyObject *run = self->pimpl->starting_run;
    self->pimpl->starting_run = NULL;
    if (!run) /* started by the engine alone: route_outcome did not run */
        run = PyObject_GetAttrString((PyObject *)self, "run");
    Py_CLEAR(self->pimpl->run); /* gone once started */
    PyObject *result;
    if (complete_arrival(arrival) < 0) { /* the tracer raised: no run */
        Py_XDECREF(run);
        Py_DECREF(first.value);
        result = NULL;
    } else {
        result = call_run(self, run, first);
    }
    gl_message outcome = outcome_message(result);
    if (outcome.value)
        outcome = route_outcome(self, outcome);
    if (!outcome.value) { /* not even the exception could be packed */
        PyErr_Clear();
        outcome = (gl_message){PyTuple_Pack(1, Py_None), 0};
    }
    gl_py_leave_finished_greenlet(tstate);
    return outcome;
}

/* Sets the parent in the object and the engine: 0, or a GL_E* code. */
static int set_parent_now(PyGreenlet *greenlet, PyGreenlet *parent)
{
    int error = gl_set_parent(greenlet->pimpl->record, parent->pimpl->record);
    if (!error) {
        Py_INCREF(parent);
        Py_XSETREF(greenlet->pimpl->parent, parent);
    }
    return error;
}

int gl_py_kill(PyGreenlet *greenlet, PyObject *reason)
{
    PyGreenlet *current = gl_py_current();
    if (!current)
        return -1;
    /* The result must come back here, whoever the parent is; the parent
     * is given back afterwards, for a greenlet that lives on. */
    PyGreenlet *parent = (PyGreenlet *)Py_XNewRef(greenlet->pimpl->parent);
    int error = set_parent_now(greenlet, current);
    if (error) {
        Py_XDECREF(parent);
        raise_engine_error(error);
        return -1;
    }
    PyObject *result = gl_py_throw(greenlet, PyExc_GreenletExit,
                                   reason ? reason : Py_None, Py_None);
    if (parent) /* as upstream, dead or alive */
        set_parent_now(greenlet, parent); /* fails only for a cycle made */
    Py_XDECREF(parent);
    if (!result)
        return -1;
    Py_DECREF(result);
    return 0;
}
