/*
 * greenlet_type.c -- the greenlet type: construction, attributes, switch()
 * and throw(), garbage collection, and what happens when a greenlet that
 * has not finished is deallocated (it is killed: GreenletExit is raised in
 * it so that its frames unwind).
 */
#include "binding.h"

#include <structmember.h>

static gl_py_impl *new_impl(void)
{
    gl_py_impl *impl = PyMem_Calloc(1, sizeof *impl);
    if (!impl)
        PyErr_NoMemory();
    return impl;
}

static PyObject *greenlet_new(PyTypeObject *type, PyObject *args,
                              PyObject *kwargs)
{
    (void)args;
    (void)kwargs;
    PyGreenlet *current = gl_py_current();
    if (!current)
        return NULL;
    PyGreenlet *self = (PyGreenlet *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->pimpl = new_impl();
    if (!self->pimpl) {
        Py_DECREF(self);
        return NULL;
    }
    int error = gl_create(&self->pimpl->record, gl_py_run, self,
                          current->pimpl->record);
    if (error) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    gl_set_binding(self->pimpl->record, self);
    Py_INCREF(current);
    self->pimpl->parent = current;
    self->pimpl->thread_ident = PyThread_get_thread_ident();
    gl_py_record_spawn_site(self, PyThreadState_Get());
    return (PyObject *)self;
}

static int set_parent(PyGreenlet *self, PyObject *value);

static int greenlet_init(PyGreenlet *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"run", "parent", NULL};
    PyObject *run = NULL, *parent = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OO:greenlet", keywords,
                                     &run, &parent))
        return -1;
    if (run && run != Py_None) {
        Py_INCREF(run);
        Py_XSETREF(self->pimpl->run, run);
    }
    if (parent && parent != Py_None && set_parent(self, parent) < 0)
        return -1;
    return 0;
}

static gl_state state_of(PyGreenlet *self)
{
    return gl_state_of(self->pimpl->record);
}

/* Nothing refers to the greenlet any more (deallocation, or cyclic
 * garbage). One that belongs to another thread that still lives is handed
 * to that thread (kept alive here, PEP 442 allows it), which will kill and
 * release it. One of this thread that has started and not finished is
 * killed now, so that its frames unwind; if its code keeps a reference to
 * it, it lives on. The interpreter calls this at most once per object. */
static void greenlet_finalize(PyGreenlet *self)
{
    if (!self->pimpl || !self->pimpl->record || self->pimpl->is_main)
        return;
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (!gl_is_mine(self->pimpl->record)) {
        if (gl_kill(self->pimpl->record) == GL_EWRONGTHREAD &&
            gl_py_defer_release(self) < 0)
            PyErr_WriteUnraisable((PyObject *)self);
    } else if (state_of(self) == GL_STATE_SUSPENDED && gl_py_kill(self) < 0) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    PyErr_Restore(type, value, traceback);
}

static int greenlet_traverse(PyGreenlet *self, visitproc visit, void *arg)
{
    Py_VISIT(self->dict);
    if (!self->pimpl)
        return 0;
    Py_VISIT(self->pimpl->run);
    Py_VISIT(self->pimpl->parent);
    if (!self->pimpl->is_main && state_of(self) == GL_STATE_SUSPENDED) {
        int visited = gl_py_state_traverse_frames(&self->pimpl->state, visit, arg);
        if (visited)
            return visited;
    }
    return gl_py_state_traverse(&self->pimpl->state, visit, arg);
}

static int greenlet_clear(PyGreenlet *self)
{
    Py_CLEAR(self->dict);
    if (self->pimpl) {
        Py_CLEAR(self->pimpl->run);
        gl_py_state_clear(&self->pimpl->state);
    }
    return 0;
}

static void greenlet_dealloc(PyGreenlet *self)
{
    /* The finalizer runs while the object is still tracked. */
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return; /* kept alive: by its own code, or for its thread */
    PyObject_GC_UnTrack(self);
    if (self->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)self);
    greenlet_clear(self);
    if (self->pimpl) {
        gl_py_impl *impl = self->pimpl;
        if (impl->record) {
            gl_set_binding(impl->record, NULL);
            if (impl->is_main)
                gl_release(impl->record);
            else
                gl_destroy(impl->record);
        }
        Py_CLEAR(impl->parent);
        gl_py_clear_labels(impl);
        PyMem_Free(impl);
        self->pimpl = NULL;
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ------------------------------------------------------------- methods */

static PyObject *greenlet_switch(PyGreenlet *self, PyObject *args,
                                 PyObject *kwargs)
{
    return gl_py_switch(self, args, kwargs);
}

static PyObject *greenlet_throw(PyGreenlet *self, PyObject *args)
{
    PyObject *type = PyExc_GreenletExit, *value = Py_None,
             *traceback = Py_None;
    if (!PyArg_ParseTuple(args, "|OOO:throw", &type, &value, &traceback))
        return NULL;
    return gl_py_throw(self, type, value, traceback);
}

static PyObject *greenlet_reduce(PyGreenlet *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyErr_SetString(PyExc_TypeError, "cannot serialize 'greenlet' object");
    return NULL;
}

static int greenlet_bool(PyGreenlet *self)
{
    gl_state state = state_of(self);
    return state == GL_STATE_RUNNING || state == GL_STATE_SUSPENDED;
}

/* ---------------------------------------------------------- attributes */

static PyObject *get_run(PyGreenlet *self, void *closure)
{
    (void)closure;
    if (state_of(self) != GL_STATE_NEW || !self->pimpl->run) {
        PyErr_SetString(PyExc_AttributeError, "run");
        return NULL;
    }
    Py_INCREF(self->pimpl->run);
    return self->pimpl->run;
}

static int set_run(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
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
    if (!parent)
        Py_RETURN_NONE;
    Py_INCREF(parent);
    return parent;
}

static int set_parent(PyGreenlet *self, PyObject *value)
{
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "can't delete attribute");
        return -1;
    }
    if (!PyGreenlet_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "parent must be a greenlet");
        return -1;
    }
    if (self->pimpl->is_main) {
        PyErr_SetString(PyExc_AttributeError,
                        "cannot set the parent of a main greenlet");
        return -1;
    }
    PyGreenlet *parent = (PyGreenlet *)value;
    for (PyGreenlet *p = parent; p; p = p->pimpl->parent)
        if (p == self) {
            PyErr_SetString(PyExc_ValueError, "cyclic parent chain");
            return -1;
        }
    int error = gl_set_parent(self->pimpl->record, parent->pimpl->record);
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

static int set_parent_attribute(PyGreenlet *self, PyObject *value,
                                void *closure)
{
    (void)closure;
    return set_parent(self, value);
}

static PyObject *get_dead(PyGreenlet *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(state_of(self) == GL_STATE_DEAD);
}

static PyObject *get_frame(PyGreenlet *self, void *closure)
{
    (void)closure;
    PyObject *frame = NULL;
    if (state_of(self) == GL_STATE_SUSPENDED)
        frame = (PyObject *)self->pimpl->state.top_frame_object;
    if (!frame)
        Py_RETURN_NONE;
    Py_INCREF(frame);
    return frame;
}

static PyObject *running_elsewhere(const char *verb)
{
    PyErr_Format(PyExc_ValueError,
                 "cannot %s the context of a greenlet that is running in a "
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
    if (!context)
        Py_RETURN_NONE;
    Py_INCREF(context);
    return context;
}

static int set_context(PyGreenlet *self, PyObject *value, void *closure)
{
    (void)closure;
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

static PyObject *get_stack_saved(PyGreenlet *self, void *closure)
{
    (void)closure;
    gl_greenlet_info info;
    gl_greenlet_get_info(self->pimpl->record, &info);
    return PyLong_FromSize_t(info.saved_bytes);
}

static PyObject *get_main(PyGreenlet *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->pimpl->is_main);
}

static PyGetSetDef greenlet_getset[] = {
    {"run", (getter)get_run, (setter)set_run, NULL, NULL},
    {"parent", (getter)get_parent, (setter)set_parent_attribute, NULL, NULL},
    {"dead", (getter)get_dead, NULL, NULL, NULL},
    {"gr_frame", (getter)get_frame, NULL, NULL, NULL},
    {"gr_context", (getter)get_context, (setter)set_context, NULL, NULL},
    {"_stack_saved", (getter)get_stack_saved, NULL, NULL, NULL},
    {"main", (getter)get_main, NULL, NULL, NULL},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL,
     NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static PyMethodDef greenlet_methods[] = {
    {"switch", (PyCFunction)(void (*)(void))greenlet_switch,
     METH_VARARGS | METH_KEYWORDS,
     "switch(*args, **kwargs)\n\nSwitch execution to this greenlet."},
    {"throw", (PyCFunction)greenlet_throw, METH_VARARGS,
     "throw(typ=GreenletExit, val=None, tb=None)\n\n"
     "Raise an exception in this greenlet."},
    {"__reduce__", (PyCFunction)greenlet_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static PyNumberMethods greenlet_as_number = {
    .nb_bool = (inquiry)greenlet_bool,
};

PyTypeObject PyGreenlet_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "greenlet.greenlet",
    .tp_basicsize = sizeof(PyGreenlet),
    .tp_dealloc = (destructor)greenlet_dealloc,
    .tp_as_number = &greenlet_as_number,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "greenlet(run=None, parent=None) -> greenlet\n\n"
              "Creates a new greenlet object (without running it).",
    .tp_traverse = (traverseproc)greenlet_traverse,
    .tp_clear = (inquiry)greenlet_clear,
    .tp_weaklistoffset = offsetof(PyGreenlet, weakreflist),
    .tp_methods = greenlet_methods,
    .tp_getset = greenlet_getset,
    .tp_dictoffset = offsetof(PyGreenlet, dict),
    .tp_init = (initproc)greenlet_init,
    .tp_new = greenlet_new,
    .tp_finalize = (destructor)greenlet_finalize,
};
