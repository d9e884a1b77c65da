/*
 * greenlet_type.c -- the greenlet type: construction, attributes, repr,
 * switch() and throw(), garbage collection, and what happens when a
 * greenlet that has not finished is deallocated.
 *
 * Deallocation, as upstream greenlet does it (its suite is our contract):
 * a greenlet that started and has not finished is killed each time its
 * last reference goes -- GreenletExit is raised in it, so that its frames
 * unwind and its finally blocks run -- whatever its class (a Python
 * __del__ runs first), however often it was resurrected. In another thread
 * than its own it is handed to its thread (deferred.c); once its thread
 * has exited it cannot run, and its frames are released without running
 * (cpython_compat.c). One that catches GreenletExit and suspends again is
 * reported on sys.stderr and kept, never freed.
 *
 * Garbage collection: a suspended greenlet of a live thread is not a GC
 * object (tp_is_gc), as upstream: collecting it would mean running its
 * frames inside the collector, after objects they use may have been
 * cleared. A cycle through one therefore lives until something breaks it.
 * Greenlets that cannot run again (never started, dead, or of an exited
 * thread) are ordinary GC objects; the collector sees through the frames
 * of those of an exited thread.
 */
#include "binding.h"

#include <structmember.h>

static gl_state state_of(PyGreenlet *self)
{
    return gl_state_of(self->pimpl->record);
}

/* Started (run, or running) and not finished: what upstream calls
 * active. A main greenlet is active while its thread lives. */
static int is_active(PyGreenlet *self)
{
    gl_state state = state_of(self);
    return state == GL_STATE_RUNNING || state == GL_STATE_SUSPENDED;
}

static int is_started(PyGreenlet *self)
{
    return self->pimpl->is_main || state_of(self) != GL_STATE_NEW;
}

/* ---------------------------------------------------------- construction */

static PyObject *greenlet_new(PyTypeObject *type, PyObject *args,
                              PyObject *kwargs)
{
    (void)args; /* __init__'s: subclasses may take anything */
    (void)kwargs;
    PyGreenlet *current = gl_py_current();
    if (!current)
        return NULL;
    gl_py_release_deferred();
    /* object.__new__ allocates: it refuses abstract classes, as upstream. */
    PyObject *no_arguments = PyTuple_New(0);
    PyGreenlet *self =
        no_arguments ? (PyGreenlet *)PyBaseObject_Type.tp_new(type, no_arguments,
                                                              NULL)
                     : NULL;
    Py_XDECREF(no_arguments);
    if (!self)
        return NULL;
    self->pimpl = PyMem_Calloc(1, sizeof *self->pimpl);
    if (!self->pimpl) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    int error = gl_create(&self->pimpl->record, gl_py_run, self,
                          current->pimpl->record);
    if (error) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    gl_set_binding(self->pimpl->record, self);
    self->pimpl->parent = (PyGreenlet *)Py_NewRef(current);
    self->pimpl->thread_ident = PyThread_get_thread_ident();
    gl_py_record_spawn_site(self, PyThreadState_Get());
    return (PyObject *)self;
}

static int set_run(PyGreenlet *self, PyObject *value, void *closure);
static int set_parent(PyGreenlet *self, PyObject *value, void *closure);

static int greenlet_init(PyGreenlet *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"run", "parent", NULL};
    PyObject *run = NULL, *parent = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:green", keywords,
                                     &run, &parent))
        return -1;
    if (run && set_run(self, run, NULL) < 0)
        return -1;
    if (parent && parent != Py_None && set_parent(self, parent, NULL) < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------- deallocation */

/* Kills `self`, whose count reached 0, in its own thread, or hands it to
 * its thread if that lives (only it may kill it, or release its engine
 * record, even one that never started or has ended). The object is alive
 * meanwhile (count 1, then whatever its code left). Returns 1 when it is
 * still wanted afterwards (resurrected by its code, kept for its thread,
 * or kept for refusing to die). */
static int kill_before_freeing(PyGreenlet *self)
{
    gl_py_resurrect((PyObject *)self);
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (!gl_is_mine(self->pimpl->record)) {
        if (!gl_thread_exited(self->pimpl->record) &&
            gl_py_defer_release(self) < 0)
            PyErr_WriteUnraisable((PyObject *)self);
    } else if (gl_py_kill(self, gl_py_kill_reason()) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    if (Py_REFCNT(self) == 1 && is_active(self)) {
        /* Alive, and nobody holds it: it caught GreenletExit. Say so, and
         * keep it: freeing a greenlet whose frames may run is not safe. */
        PyObject *stream = PySys_GetObject("stderr");
        Py_INCREF(self);
        if (stream && (PyFile_WriteString("GreenletExit did not kill ", stream) < 0 ||
                       PyFile_WriteObject((PyObject *)self, stream, 0) < 0 ||
                       PyFile_WriteString("\n", stream) < 0))
            PyErr_Clear();
    }
    PyErr_Restore(type, value, traceback);
    return gl_py_unresurrect((PyObject *)self);
}

/* A suspended greenlet of this thread whose thread state is gone
 * (gl_py_state_stranded) cannot be killed by running it: like one of an
 * exited thread, its frames are released without running, and it dies. */
static void end_if_stranded(PyGreenlet *self)
{
    gl_py_impl *impl = self->pimpl;
    if (state_of(self) != GL_STATE_SUSPENDED ||
        !gl_py_state_stranded(&impl->state, _PyThreadState_UncheckedGet()) ||
        !gl_is_mine(impl->record))
        return;
    gl_py_release_orphaned_frames(&impl->state);
    gl_kill(impl->record);
}

static void greenlet_dealloc(PyGreenlet *self)
{
    PyObject_GC_UnTrack(self);
    gl_py_impl *impl = self->pimpl;
    if (impl && impl->record && !impl->is_main)
        end_if_stranded(self);
    if (impl && impl->record && !impl->is_main &&
        (is_active(self) || !gl_is_mine(impl->record)) &&
        kill_before_freeing(self))
        return;
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    Py_CLEAR(self->dict);
    if (impl) {
        Py_CLEAR(impl->run);
        Py_CLEAR(impl->starting_run);
        if (impl->record && !impl->is_main && gl_thread_exited(impl->record))
            gl_py_release_orphaned_frames(&impl->state);
        Py_CLEAR(impl->calling_run);
        Py_CLEAR(impl->calling_arguments);
        gl_py_state_clear(&impl->state);
        if (impl->record) {
            if (gl_binding(impl->record) == self)
                gl_set_binding(impl->record, NULL);
            if (impl->is_main) {
                gl_release(impl->record);
                gl_py_main_greenlet_freed();
            } else {
                gl_destroy(impl->record);
            }
        }
        Py_CLEAR(impl->parent);
        gl_py_clear_labels(impl);
        PyMem_Free(impl);
        self->pimpl = NULL;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---------------------------------------------------- garbage collection */

/* Whether the collector may treat it as garbage: not while it is
 * suspended in a live thread (its frames may still run), see above. */
static int greenlet_is_gc(PyGreenlet *self)
{
    if (!self->pimpl || !self->pimpl->record || self->pimpl->is_main)
        return 1;
    return state_of(self) != GL_STATE_SUSPENDED;
}

static int greenlet_traverse(PyGreenlet *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dict);
    gl_py_impl *impl = self->pimpl;
    if (!impl)
        return 0;
    Py_VISIT(impl->run);
    Py_VISIT(impl->starting_run);
    Py_VISIT(impl->calling_run);
    Py_VISIT(impl->calling_arguments);
    Py_VISIT(impl->parent);
    if (impl->record && !impl->is_main && gl_thread_exited(impl->record)) {
        int visited = gl_py_traverse_orphaned_frames(&impl->state, visit, arg);
        if (visited)
            return visited;
    }
    return gl_py_state_traverse(&impl->state, visit, arg);
}

/* Only for greenlets that cannot run: the collector never sees a
 * suspended one of a live thread. */
static int greenlet_clear(PyGreenlet *self)
{
    Py_CLEAR(self->dict);
    gl_py_impl *impl = self->pimpl;
    if (impl) {
        Py_CLEAR(impl->run);
        Py_CLEAR(impl->starting_run);
        if (impl->record && !impl->is_main && gl_thread_exited(impl->record)) {
            gl_py_release_orphaned_frames(&impl->state);
            Py_CLEAR(impl->calling_run); /* only then: it may run */
            Py_CLEAR(impl->calling_arguments);
        }
        gl_py_state_clear(&impl->state);
    }
    return 0;
}

/* ------------------------------------------------------------- methods */

/* switch() and throw() take their arguments as the interpreter has them
 * (METH_FASTCALL): called from Python code, they lie on the calling
 * frame's evaluation stack, and where they end tells how deep that stack
 * is -- a greenlet whose thread dies suspended there can then release
 * what its frame's stack holds (cpython_compat.c, orphans). */
static void note_call(PyObject *const *args, Py_ssize_t count,
                      PyObject *keywords)
{
    gl_py_this_thread.call_top =
        (void *)(args + count + (keywords ? PyTuple_GET_SIZE(keywords) : 0));
    gl_py_this_thread.call_keywords = keywords;
}

static void forget_call(void)
{
    gl_py_this_thread.call_top = gl_py_this_thread.call_keywords = NULL;
}

static PyObject *greenlet_switch(PyGreenlet *self, PyObject *const *args,
                                 Py_ssize_t count, PyObject *keywords)
{
    PyObject *positional = PyTuple_New(count);
    if (!positional)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++)
        PyTuple_SET_ITEM(positional, i, Py_NewRef(args[i]));
    PyObject *named = NULL;
    if (keywords && PyTuple_GET_SIZE(keywords) > 0) {
        named = PyDict_New();
        for (Py_ssize_t i = 0; named && i < PyTuple_GET_SIZE(keywords); i++)
            if (PyDict_SetItem(named, PyTuple_GET_ITEM(keywords, i),
                               args[count + i]) < 0)
                Py_CLEAR(named);
        if (!named) {
            Py_DECREF(positional);
            return NULL;
        }
    }
    note_call(args, count, keywords);
    PyObject *result = gl_py_switch(self, positional, named);
    forget_call();
    return result;
}

static PyObject *greenlet_throw(PyGreenlet *self, PyObject *const *args,
                                Py_ssize_t count, PyObject *keywords)
{
    if (keywords && PyTuple_GET_SIZE(keywords) > 0) {
        PyErr_SetString(PyExc_TypeError,
                        "greenlet.throw() takes no keyword arguments");
        return NULL;
    }
    if (count > 3) {
        PyErr_Format(PyExc_TypeError,
                     "throw() takes at most 3 arguments (%zd given)", count);
        return NULL;
    }
    note_call(args, count, keywords);
    PyObject *result = gl_py_throw(self, count > 0 ? args[0] : PyExc_GreenletExit,
                                   count > 1 ? args[1] : Py_None,
                                   count > 2 ? args[2] : Py_None);
    forget_call();
    return result;
}

static PyObject *greenlet_getstate(PyGreenlet *self, PyObject *unused)
{
    (void)unused;
    PyErr_Format(PyExc_TypeError, "cannot serialize '%s' object",
                 Py_TYPE(self)->tp_name);
    return NULL;
}

static int greenlet_bool(PyGreenlet *self)
{
    return is_active(self);
}

/* "<greenlet.greenlet object at 0x... (otid=0x...) suspended active
 * started>", as upstream writes it: otid is the thread's ident, or NULL
 * for a greenlet that never started or whose thread has exited. */
static PyObject *greenlet_repr(PyGreenlet *self)
{
    const char *type_name = Py_TYPE(self)->tp_name;
    int exited = gl_thread_exited(self->pimpl->record);
    int started = is_started(self);
    void *thread = started && !exited ? (void *)self->pimpl->thread_ident
                                      : NULL;
    if (started && !is_active(self))
        return PyUnicode_FromFormat("<%s object at %p (otid=%p) %sdead>",
                                    type_name, self, thread,
                                    exited ? "(thread exited) " : "");
    const char *where = gl_py_this_thread.current == self ? " current"
                        : started                         ? " suspended"
                                                          : "";
    return PyUnicode_FromFormat(
        "<%s object at %p (otid=%p)%s%s%s%s>", type_name, self, thread, where,
        is_active(self) ? " active" : "", started ? " started" : " pending",
        self->pimpl->is_main ? " main" : "");
}

/* ---------------------------------------------------------- attributes */

static PyObject *main_has_no_run(void)
{
    PyErr_SetString(PyExc_AttributeError,
                    "Main greenlets do not have a run attribute.");
    return NULL;
}

static PyObject *get_run(PyGreenlet *self, void *closure)
{
    (void)closure;
    if (self->pimpl->is_main)
        return main_has_no_run();
    if (state_of(self) != GL_STATE_NEW || !self->pimpl->run) {
        PyErr_SetString(PyExc_AttributeError, "run");
        return NULL;
    }
    return Py_NewRef(self->pimpl->run);
}

static int set_run(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
    if (self->pimpl->is_main) {
        main_has_no_run();
        return -1;
    }
    if (state_of(self) != GL_STATE_NEW) {
        PyErr_SetString(PyExc_AttributeError,
                        "run cannot be set after the start of the greenlet");
        return -1;
    }
    Py_XINCREF(value);
    Py_XSETREF(self->pimpl->run, value);
    return 0;
}

static PyObject *get_parent(PyGreenlet *self, void *closure)
{
    (void)closure;
    PyObject *parent = (PyObject *)self->pimpl->parent;
    return Py_NewRef(parent ? parent : Py_None);
}

/* The parent setter, with upstream's messages. A greenlet that never ran
 * may take a parent of another thread (its start is refused then); the
 * engine's record takes it at the start (switching.c). */
static int set_parent(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute");
        return -1;
    }
    if (self->pimpl->is_main) {
        PyErr_SetString(PyExc_AttributeError,
                        "cannot set the parent of a main greenlet");
        return -1;
    }
    if (!PyGreenlet_Check(value)) {
        PyErr_Format(PyExc_TypeError,
                     "GreenletChecker: Expected any type of greenlet, not %s",
                     Py_TYPE(value)->tp_name);
        return -1;
    }
    PyGreenlet *parent = (PyGreenlet *)value;
    for (PyGreenlet *p = parent; p; p = p->pimpl->parent)
        if (p == self) {
            PyErr_SetString(PyExc_ValueError, "cyclic parent chain");
            return -1;
        }
    int error = gl_set_parent(self->pimpl->record, parent->pimpl->record);
    if (error == GL_EWRONGTHREAD && state_of(self) == GL_STATE_NEW)
        error = 0;
    if (error == GL_EWRONGTHREAD) {
        PyErr_SetString(PyExc_ValueError,
                        "parent cannot be on a different thread");
        return -1;
    }
    if (error) {
        PyErr_SetString(PyExc_ValueError, gl_strerror(error));
        return -1;
    }
    Py_INCREF(parent);
    Py_XSETREF(self->pimpl->parent, parent);
    return 0;
}

static PyObject *get_dead(PyGreenlet *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(is_started(self) && !is_active(self));
}

static PyObject *get_frame(PyGreenlet *self, void *closure)
{
    (void)closure;
    if (state_of(self) != GL_STATE_SUSPENDED &&
        !gl_thread_exited(self->pimpl->record))
        Py_RETURN_NONE;
    PyObject *frame = gl_py_state_frame(&self->pimpl->state);
    if (!frame && PyErr_Occurred())
        return NULL;
    return Py_NewRef(frame ? frame : Py_None);
}

static PyObject *running_elsewhere(const char *verb)
{
    PyErr_Format(PyExc_ValueError,
                 "cannot %s context of a greenlet that is running in a "
                 "different thread", verb);
    return NULL;
}

static PyObject *get_context(PyGreenlet *self, void *closure)
{
    (void)closure;
    PyObject *context;
    if (state_of(self) == GL_STATE_RUNNING) {
        if (!gl_is_mine(self->pimpl->record))
            return running_elsewhere("get");
        context = gl_py_running_context(_PyThreadState_UncheckedGet());
    } else {
        context = self->pimpl->state.context;
    }
    return Py_NewRef(context ? context : Py_None);
}

static int set_context(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError,
                        "can't delete context attribute");
        return -1;
    }
    if (value == Py_None)
        value = NULL;
    if (value && !PyContext_CheckExact(value)) {
        PyErr_SetString(PyExc_TypeError,
                        "greenlet context must be a contextvars.Context or None");
        return -1;
    }
    if (state_of(self) == GL_STATE_RUNNING) {
        if (!gl_is_mine(self->pimpl->record)) {
            running_elsewhere("set");
            return -1;
        }
        gl_py_set_running_context(_PyThreadState_UncheckedGet(), value);
        return 0;
    }
    Py_XINCREF(value);
    Py_XSETREF(self->pimpl->state.context, value);
    return 0;
}

/* The bytes of stack the greenlet keeps while it does not run: its heap
 * copy, and what lies in place below a greenlet that runs deeper (this
 * engine copies lazily, so that part may be still on the stack). 0 while
 * it runs, before it starts and after it ends. */
static PyObject *get_stack_saved(PyGreenlet *self, void *closure)
{
    (void)closure;
    gl_greenlet_info info;
    gl_greenlet_get_info(self->pimpl->record, &info);
    if (info.state != GL_STATE_SUSPENDED)
        return PyLong_FromLong(0);
    if (info.stack_stop > info.stack_pointer)
        return PyLong_FromSize_t(info.stack_stop - info.stack_pointer);
    return PyLong_FromSize_t(info.saved_bytes);
}

static PyGetSetDef greenlet_getset[] = {
    {"run", (getter)get_run, (setter)set_run, NULL, NULL},
    {"parent", (getter)get_parent, (setter)set_parent, NULL, NULL},
    {"gr_frame", (getter)get_frame, NULL, NULL, NULL},
    {"gr_context", (getter)get_context, (setter)set_context, NULL, NULL},
    {"dead", (getter)get_dead, NULL, NULL, NULL},
    {"_stack_saved", (getter)get_stack_saved, NULL, NULL, NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL,
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef greenlet_methods[] = {
    {"switch", (PyCFunction)(void (*)(void))greenlet_switch,
     METH_FASTCALL | METH_KEYWORDS,
     "switch(*args, **kwargs)\n\n"
     "Switch execution to this greenlet.\n\n"
     "If this greenlet has never been run, then this greenlet\n"
     "will be switched to using the body of ``self.run(*args, **kwargs)``.\n\n"
     "If the greenlet is active (has been run, but was switch()'ed\n"
     "out before leaving its run function), then this greenlet will\n"
     "be resumed and the return value to its switch call will be\n"
     "None if no arguments are given, the given argument if one\n"
     "argument is given, or the args tuple and keyword args dict if\n"
     "multiple arguments are given.\n\n"
     "If the greenlet is dead, or is the current greenlet then this\n"
     "function will simply return the arguments using the same rules as\n"
     "above.\n"},
    {"throw", (PyCFunction)(void (*)(void))greenlet_throw,
     METH_FASTCALL | METH_KEYWORDS,
     "throw(typ=GreenletExit, val=None, tb=None)\n\n"
     "Switches execution to this greenlet, but immediately raises the\n"
     "given exception in this greenlet. If no argument is provided, the\n"
     "exception defaults to `greenlet.GreenletExit`. The normal exception\n"
     "propagation rules apply, as described for `switch`.\n"},
    {"__getstate__", (PyCFunction)greenlet_getstate, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyNumberMethods greenlet_as_number = {
    .nb_bool = (inquiry)greenlet_bool,
};

PyTypeObject PyGreenlet_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "greenlet.greenlet",
    .tp_basicsize = sizeof(PyGreenlet),
    .tp_dealloc = (destructor)greenlet_dealloc,
    .tp_repr = (reprfunc)greenlet_repr,
    .tp_as_number = &greenlet_as_number,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "greenlet(run=None, parent=None) -> greenlet\n\n"
              "Creates a new greenlet object (without running it).\n\n"
              " - *run* -- The callable to invoke.\n"
              " - *parent* -- The parent greenlet. The default is the "
              "current greenlet.",
    .tp_traverse = (traverseproc)greenlet_traverse,
    .tp_clear = (inquiry)greenlet_clear,
    .tp_weaklistoffset = offsetof(PyGreenlet, weakreflist),
    .tp_methods = greenlet_methods,
    .tp_getset = greenlet_getset,
    .tp_dictoffset = offsetof(PyGreenlet, dict),
    .tp_init = (initproc)greenlet_init,
    .tp_new = greenlet_new,
    .tp_is_gc = (inquiry)greenlet_is_gc,
};
