/*
 * native_view.c -- inspect/'s C functions for Python: the native frames of
 * a suspended greenlet (libunwind, reading saved stack bytes from the heap
 * copy), and its stack memory as it sees it. Greenlets of any thread: the
 * GIL, which we hold, keeps their threads from switching meanwhile, which
 * is what inspect/ asks of callers for other threads' greenlets.
 */
#include "binding.h"
#include "glinspect.h"

#define MAX_NATIVE_FRAMES 256

static PyObject *raise_inspect_error(int code)
{
    if (code == GL_EINVAL)
        PyErr_SetString(PyExc_ValueError,
                        "the greenlet is not suspended, or the range is "
                        "outside its stack");
    else if (code == GL_ENOMEM)
        PyErr_NoMemory();
    else
        PyErr_SetString(PyExc_RuntimeError, gl_strerror(code));
    return NULL;
}

static gl_greenlet *record_of(PyObject *object)
{
    if (!PyGreenlet_Check(object)) {
        PyErr_SetString(PyExc_TypeError, "expected a greenlet");
        return NULL;
    }
    return ((PyGreenlet *)object)->pimpl->record;
}

PyObject *gl_py_native_backtrace(PyObject *module, PyObject *object)
{
    (void)module;
    gl_greenlet *record = record_of(object);
    if (!record)
        return NULL;
    gl_native_frame *frames = PyMem_Malloc(MAX_NATIVE_FRAMES * sizeof *frames);
    if (!frames)
        return PyErr_NoMemory();
    size_t count;
    int outcome = gl_native_backtrace(record, frames, MAX_NATIVE_FRAMES, &count);
    if (outcome < 0) {
        PyMem_Free(frames);
        return raise_inspect_error(outcome);
    }
    /* Zeroed before freeing: the frames' stack pointers would otherwise
     * stay in the heap, for the hazard audit to find. */
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < count; i++) {
        PyObject *frame = Py_BuildValue(
            "{s:K,s:K,s:K,s:s,s:s}", "ip", (unsigned long long)frames[i].ip,
            "sp", (unsigned long long)frames[i].sp,
            "offset", (unsigned long long)frames[i].offset, "function",
            frames[i].function, "object", frames[i].object);
        if (!frame || PyList_Append(list, frame) < 0)
            Py_CLEAR(list);
        Py_XDECREF(frame);
    }
    explicit_bzero(frames, count * sizeof *frames);
    PyMem_Free(frames);
    if (!list)
        return NULL;
    /* Whether the walk reached the greenlet's root frame. */
    PyObject *result = Py_BuildValue("(NO)", list, outcome ? Py_True : Py_False);
    return result;
}

PyObject *gl_py_read_stack(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *object;
    unsigned long long address;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "OKn:read_stack", &object, &address, &size))
        return NULL;
    gl_greenlet *record = record_of(object);
    if (!record)
        return NULL;
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "size must not be negative");
        return NULL;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, size);
    if (!bytes)
        return NULL;
    int error = gl_read_stack(record, (uintptr_t)address,
                              PyBytes_AS_STRING(bytes), (size_t)size);
    if (error) {
        Py_DECREF(bytes);
        return raise_inspect_error(error);
    }
    return bytes;
}
