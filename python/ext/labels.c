/*
 * labels.c -- what a program tells about its greenlets, for inspection:
 * a name given with greenlet.inspect.set_name(), and the spawn site (the
 * function, file and line of the innermost Python frame that created the
 * greenlet), recorded while spawn sites are on. Recording costs a frame
 * lookup and three references per creation, so it is off unless asked for
 * (greenlet.inspect.record_spawn_sites(True), or GREENLET_SPAWN_SITES=1 in
 * the environment). Both end up in snapshots and in the monitor segment.
 */
#include "binding.h"

#include <stdlib.h>
#include <string.h>

static int spawn_sites_on;

void gl_py_labels_init(void)
{
    const char *value = getenv("GREENLET_SPAWN_SITES");
    spawn_sites_on = value && *value && strcmp(value, "0") != 0;
}

void gl_py_record_spawn_site(PyGreenlet *greenlet, PyThreadState *tstate)
{
    if (!spawn_sites_on)
        return;
    PyFrameObject *frame = PyThreadState_GetFrame(tstate); /* new or NULL */
    if (!frame)
        return;
    PyCodeObject *code = PyFrame_GetCode(frame); /* new reference */
    gl_py_impl *impl = greenlet->pimpl;
    Py_XSETREF(impl->spawn_function, Py_NewRef(gl_py_code_name(code)));
    Py_XSETREF(impl->spawn_file, Py_NewRef(code->co_filename));
    impl->spawn_line = PyFrame_GetLineNumber(frame);
    Py_DECREF(code);
    Py_DECREF(frame);
}

void gl_py_clear_labels(gl_py_impl *impl)
{
    Py_CLEAR(impl->name);
    Py_CLEAR(impl->spawn_function);
    Py_CLEAR(impl->spawn_file);
}

static gl_py_impl *impl_of(PyObject *object)
{
    if (!PyGreenlet_Check(object)) {
        PyErr_SetString(PyExc_TypeError, "expected a greenlet");
        return NULL;
    }
    gl_py_impl *impl = ((PyGreenlet *)object)->pimpl;
    if (!impl)
        PyErr_SetString(PyExc_ValueError, "the greenlet is being destroyed");
    return impl;
}

PyObject *gl_py_set_name(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *greenlet, *name;
    if (!PyArg_ParseTuple(args, "OO:set_name", &greenlet, &name))
        return NULL;
    gl_py_impl *impl = impl_of(greenlet);
    if (!impl)
        return NULL;
    if (name != Py_None && !PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "a name is a str, or None");
        return NULL;
    }
    Py_XSETREF(impl->name, name == Py_None ? NULL : Py_NewRef(name));
    Py_RETURN_NONE;
}

PyObject *gl_py_labels_of(PyObject *module, PyObject *greenlet)
{
    (void)module;
    gl_py_impl *impl = impl_of(greenlet);
    if (!impl)
        return NULL;
    PyObject *site = Py_None;
    if (impl->spawn_file)
        site = Py_BuildValue("{s:O,s:O,s:i}", "function",
                             impl->spawn_function ? impl->spawn_function
                                                  : Py_None,
                             "file", impl->spawn_file, "line",
                             impl->spawn_line);
    else
        Py_INCREF(site);
    if (!site)
        return NULL;
    return Py_BuildValue("(ON)", impl->name ? impl->name : Py_None, site);
}

PyObject *gl_py_record_spawn_sites(PyObject *module, PyObject *on)
{
    (void)module;
    int truth = PyObject_IsTrue(on);
    if (truth < 0)
        return NULL;
    PyObject *previous = spawn_sites_on ? Py_True : Py_False;
    spawn_sites_on = truth;
    return Py_NewRef(previous);
}
