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

/* Sets report[name] to whether `failed` is true with a TypeError set,
 * which it clears. */
static void expect_type_error(PyObject *report, const char *name, int failed)
{
    int as_expected = failed && PyErr_ExceptionMatches(PyExc_TypeError);
    PyErr_Clear();
    PyDict_SetItemString(report, name, PyBool_FromLong(as_expected));
}

/* edges(not_a_greenlet) -> dict: how the slots treat what upstream's
 * treat specially: NULLs, main greenlets, objects that are no greenlet. */
static PyObject *edges(PyObject *module, PyObject *other)
{
    (void)module;
    PyObject *report = PyDict_New();
    PyGreenlet *current = PyGreenlet_GetCurrent();
    if (!report || !current)
        return NULL;
    PyGreenlet *bad = (PyGreenlet *)other;
    PyGreenlet *parent = PyGreenlet_GetParent(current);
    PyDict_SetItemString(report, "parent_of_main_is_null_without_error",
                         PyBool_FromLong(!parent && !PyErr_Occurred()));
    expect_type_error(report, "switch", !PyGreenlet_Switch(bad, NULL, NULL));
    expect_type_error(report, "throw",
                      !PyGreenlet_Throw(bad, PyExc_ValueError, NULL, NULL));
    expect_type_error(report, "main", PyGreenlet_MAIN(bad) == -1);
    expect_type_error(report, "started", PyGreenlet_STARTED(bad) == -1);
    expect_type_error(report, "active", PyGreenlet_ACTIVE(bad) == -1);
    expect_type_error(report, "get_parent", !PyGreenlet_GetParent(bad));
    /* A greenlet made without run: switching to it finds none. */
    PyGreenlet *runless = PyGreenlet_New(NULL, NULL);
    PyObject *result = runless ? PyGreenlet_Switch(runless, NULL, NULL) : NULL;
    PyDict_SetItemString(
        report, "switch_without_run_is_attribute_error",
        PyBool_FromLong(!result && PyErr_ExceptionMatches(PyExc_AttributeError)));
    PyErr_Clear();
    /* Deleting the parent is refused, with the setter's message. */
    int deleted = runless ? PyGreenlet_SetParent(runless, NULL) : 0;
    PyDict_SetItemString(
        report, "set_parent_null_is_attribute_error",
        PyBool_FromLong(deleted == -1 &&
                        PyErr_ExceptionMatches(PyExc_AttributeError)));
    PyErr_Clear();
    Py_XDECREF(runless);
    Py_DECREF(current);
    return report;
}

/* switch_with(g, kwargs) -> what g's switch returns when the C caller
 * passes `kwargs` (which upstream ignores unless it is a dict). */
static PyObject *switch_with(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *g, *kwargs;
    if (!PyArg_ParseTuple(args, "OO", &g, &kwargs))
        return NULL;
    PyObject *positional = Py_BuildValue("(i)", 1);
    if (!positional)
        return NULL;
    PyObject *result =
        PyGreenlet_Switch((PyGreenlet *)g, positional, kwargs);
    Py_DECREF(positional);
    return result;
}

static PyMethodDef methods[] = {
    {"probe", probe, METH_O, NULL},
    {"edges", edges, METH_O, NULL},
    {"switch_with", switch_with, METH_VARARGS, NULL},
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
