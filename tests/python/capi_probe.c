/*
 * capi_probe.c -- a test extension that uses every slot of greenlet's C
 * API through greenlet.h. test_c_api.py compiles it twice, against the
 * greenlet.h shipped with this package and against Debian's greenlet 2.0
 * header, and runs it on this package.
 */
#include <Python.h>

#include "greenlet.h"

/* probe(run) -> dict of what each slot answered. */
static PyObject *probe(PyObject *module, PyObject *run)
{
    (void)module;
    PyObject *report = PyDict_New();
    PyGreenlet *current = PyGreenlet_GetCurrent();
    PyGreenlet *g = PyGreenlet_New(run, NULL);
    if (!report || !current || !g)
        return NULL;
    PyDict_SetItemString(report, "type_ok",
                         PyBool_FromLong(PyGreenlet_Check((PyObject *)g)));
    PyDict_SetItemString(report, "main",
                         PyBool_FromLong(PyGreenlet_MAIN(current)));
    PyDict_SetItemString(report, "started_before",
                         PyBool_FromLong(PyGreenlet_STARTED(g)));
    PyObject *args = Py_BuildValue("(i)", 20);
    PyObject *first = PyGreenlet_Switch(g, args, NULL);
    Py_DECREF(args);
    if (!first)
        return NULL;
    PyDict_SetItemString(report, "first", first);
    PyDict_SetItemString(report, "active",
                         PyBool_FromLong(PyGreenlet_ACTIVE(g)));
    PyGreenlet *parent = PyGreenlet_GetParent(g);
    PyDict_SetItemString(report, "parent_is_current",
                         PyBool_FromLong(parent == current));
    Py_XDECREF(parent);
    PyGreenlet *other = PyGreenlet_New(run, NULL);
    PyDict_SetItemString(report, "set_parent",
                         PyLong_FromLong(PyGreenlet_SetParent(other, g)));
    PyObject *thrown = PyGreenlet_Throw(g, PyExc_GreenletExit, NULL, NULL);
    if (!thrown)
        return NULL;
    PyDict_SetItemString(report, "thrown_result_is_exit",
                         PyBool_FromLong(PyObject_IsInstance(
                             thrown, PyExc_GreenletExit)));
    PyDict_SetItemString(report, "dead_after_throw",
                         PyBool_FromLong(!PyGreenlet_ACTIVE(g) &&
                                         PyGreenlet_STARTED(g)));
    PyDict_SetItemString(report, "error_is_exception",
                         PyBool_FromLong(PyExceptionClass_Check(
                             PyExc_GreenletError)));
    PyDict_SetItemString(report, "basicsize",
                         PyLong_FromSsize_t(PyGreenlet_Type.tp_basicsize));
    Py_DECREF(thrown);
    Py_DECREF(other);
    Py_DECREF(g);
    Py_DECREF(current);
    return report;
}

static PyMethodDef methods[] = {
    {"probe", probe, METH_O, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "capi_probe",
                                        NULL, -1, methods,
                                        NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_capi_probe(void)
{
    PyGreenlet_Import();
    if (!_PyGreenlet_API)
        return NULL;
    return PyModule_Create(&definition);
}
