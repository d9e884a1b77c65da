/*
 * upstream_helpers.c -- the private functions of greenlet._greenlet that
 * upstream greenlet's own test suite and tools call, with upstream's
 * names and docstrings, each reporting what this binding really does:
 *
 *   get_pending_cleanup_count()   greenlets dropped in another thread whose
 *                                 own thread has exited, waiting for any
 *                                 thread to release them (deferred.c)
 *   get_total_main_greenlets()    main greenlet objects alive, all threads
 *   get_tstate_trash_delete_nesting()  the thread's trash can nesting
 *   get_clocks_used_doing_optional_cleanup(), enable_optional_cleanup()
 *                                 the clock() ticks spent on the optional
 *                                 cleanup at thread exit (switching.c)
 *   set_thread_local(key, value)  an item of the thread state's dict
 *   CLOCKS_PER_SEC
 */
#include "binding.h"

#include <time.h>

static PyObject *get_pending_cleanup_count(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromSsize_t(gl_py_pending_cleanups());
}

static PyObject *get_total_main_greenlets(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromSsize_t(gl_py_main_greenlets_alive());
}

static PyObject *get_tstate_trash_delete_nesting(PyObject *module,
                                                 PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromLong(
        gl_py_trash_delete_nesting(_PyThreadState_UncheckedGet()));
}

static PyObject *get_clocks_used(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    long long clocks = gl_py_optional_cleanup_clocks();
    if (clocks < 0)
        Py_RETURN_NONE;
    return PyLong_FromLongLong(clocks);
}

static PyObject *enable_optional_cleanup(PyObject *module, PyObject *flag)
{
    (void)module;
    int enable = PyObject_IsTrue(flag);
    if (enable < 0)
        return NULL;
    gl_py_enable_optional_cleanup(enable);
    Py_RETURN_NONE;
}

static PyObject *set_thread_local(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *key, *value;
    if (!PyArg_UnpackTuple(args, "set_thread_local", 2, 2, &key, &value))
        return NULL;
    PyObject *thread_dict = PyThreadState_GetDict();
    if (!thread_dict) {
        PyErr_SetString(PyExc_RuntimeError, "this thread has no dict");
        return NULL;
    }
    if (PyDict_SetItem(thread_dict, key, value) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef helper_methods[] = {
    {"get_pending_cleanup_count", get_pending_cleanup_count, METH_NOARGS,
     "get_pending_cleanup_count() -> Integer\n\n"
     "Get the number of greenlet cleanup operations pending. Testing only.\n"},
    {"get_total_main_greenlets", get_total_main_greenlets, METH_NOARGS,
     "get_total_main_greenlets() -> Integer\n\n"
     "Quickly return the number of main greenlets that exist. Testing only.\n"},
    {"get_tstate_trash_delete_nesting", get_tstate_trash_delete_nesting,
     METH_NOARGS,
     "get_tstate_trash_delete_nesting() -> Integer\n\n"
     "Return the 'trash can' nesting level. Testing only.\n"},
    {"get_clocks_used_doing_optional_cleanup", get_clocks_used, METH_NOARGS,
     "get_clocks_used_doing_optional_cleanup() -> Integer\n\n"
     "Get the number of clock ticks the program has used doing optional\n"
     "greenlet cleanup (when a thread ends, looking for what still holds\n"
     "its main greenlet). None if the cleanup is disabled.\n"},
    {"enable_optional_cleanup", enable_optional_cleanup, METH_O,
     "mod_enable_optional_cleanup(bool) -> None\n\n"
     "Enable or disable optional cleanup operations.\n"
     "See ``get_clocks_used_doing_optional_cleanup()`` for details.\n"},
    {"set_thread_local", set_thread_local, METH_VARARGS,
     "set_thread_local(key, value) -> None\n\n"
     "Set a value in the current thread-local dictionary. Debugging only.\n"},
    {NULL, NULL, 0, NULL}};

int gl_py_upstream_helpers_init(PyObject *module)
{
    if (PyModule_AddFunctions(module, helper_methods) < 0)
        return -1;
    return PyModule_AddIntConstant(module, "CLOCKS_PER_SEC",
                                   (long)CLOCKS_PER_SEC);
}
