/*
 * module.c -- the module greenlet._greenlet: getcurrent, settrace and
 * gettrace, the exceptions, the feature flags, and the C API capsule
 * (greenlet._C_API) with the twelve slots, in greenlet 2.x's order, that
 * greenlet.h describes.
 */
#include "binding.h"

PyObject *PyExc_GreenletError;
PyObject *PyExc_GreenletExit;

/* --------------------------------------------------------------- the C API */

static PyGreenlet *api_new(PyObject *run, PyGreenlet *parent)
{
    PyObject *arguments = PyDict_New();
    if (!arguments)
        return NULL;
    if ((run && PyDict_SetItemString(arguments, "run", run) < 0) ||
        (parent && PyDict_SetItemString(arguments, "parent",
                                        (PyObject *)parent) < 0)) {
        Py_DECREF(arguments);
        return NULL;
    }
    PyObject *empty = PyTuple_New(0);
    PyObject *greenlet =
        empty ? PyObject_Call((PyObject *)&PyGreenlet_Type, empty, arguments)
              : NULL;
    Py_XDECREF(empty);
    Py_DECREF(arguments);
    return (PyGreenlet *)greenlet;
}

/* getcurrent(), which also releases what other threads handed back. A
 * new reference, as greenlet's API has it. */
static PyGreenlet *api_get_current(void)
{
    PyGreenlet *current = gl_py_current();
    if (!current)
        return NULL;
    gl_py_release_deferred();
    gl_py_release_leftovers();
    return (PyGreenlet *)Py_NewRef(gl_py_current());
}

/* The C API's functions check their greenlet argument as upstream's do. */
static int not_a_greenlet(void *object)
{
    if (object && PyGreenlet_Check((PyObject *)object))
        return 0;
    PyErr_BadArgument();
    return 1;
}

static PyObject *api_throw(PyGreenlet *self, PyObject *type, PyObject *value,
                           PyObject *traceback)
{
    if (not_a_greenlet(self))
        return NULL;
    return gl_py_throw(self, type, value ? value : Py_None,
                       traceback ? traceback : Py_None);
}

static PyObject *api_switch(PyGreenlet *self, PyObject *args,
                            PyObject *kwargs)
{
    if (not_a_greenlet(self))
        return NULL;
    if (kwargs && !PyDict_Check(kwargs))
        kwargs = NULL; /* upstream ignores what is not a dict */
    return gl_py_switch(self, args ? Py_NewRef(args) : PyTuple_New(0),
                        Py_XNewRef(kwargs));
}

static int api_set_parent(PyGreenlet *self, PyGreenlet *parent)
{
    if (not_a_greenlet(self))
        return -1;
    return PyObject_SetAttrString((PyObject *)self, "parent",
                                  (PyObject *)parent);
}

static int api_main(PyGreenlet *self)
{
    if (not_a_greenlet(self))
        return -1;
    return self->pimpl->is_main;
}

static int api_started(PyGreenlet *self)
{
    if (not_a_greenlet(self))
        return -1;
    return self->pimpl->is_main ||
           gl_state_of(self->pimpl->record) != GL_STATE_NEW;
}

static int api_active(PyGreenlet *self)
{
    if (not_a_greenlet(self))
        return -1;
    gl_state state = gl_state_of(self->pimpl->record);
    return state == GL_STATE_RUNNING || state == GL_STATE_SUSPENDED;
}

/* A new reference; NULL without an exception for a main greenlet. */
static PyGreenlet *api_get_parent(PyGreenlet *self)
{
    if (not_a_greenlet(self))
        return NULL;
    PyGreenlet *parent = self->pimpl->parent;
    Py_XINCREF(parent);
    return parent;
}

static void *c_api[12];

static void fill_c_api(void)
{
    c_api[0] = &PyGreenlet_Type;
    c_api[1] = PyExc_GreenletError;
    c_api[2] = PyExc_GreenletExit;
    c_api[3] = (void *)api_new;
    c_api[4] = (void *)api_get_current;
    c_api[5] = (void *)api_throw;
    c_api[6] = (void *)api_switch;
    c_api[7] = (void *)api_set_parent;
    c_api[8] = (void *)api_main;
    c_api[9] = (void *)api_started;
    c_api[10] = (void *)api_active;
    c_api[11] = (void *)api_get_parent;
}

/* ------------------------------------------------------- module functions */

static PyObject *module_getcurrent(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return (PyObject *)api_get_current();
}

static PyObject *module_settrace(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *function;
    if (!PyArg_ParseTuple(args, "O", &function))
        return NULL;
    PyObject *previous = gl_py_trace_function();
    if (!previous)
        previous = Py_None;
    Py_INCREF(previous);
    gl_py_set_trace_function(function == Py_None ? NULL : function);
    return previous;
}

static PyObject *module_gettrace(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    PyObject *function = gl_py_trace_function();
    if (!function)
        Py_RETURN_NONE;
    Py_INCREF(function);
    return function;
}

static PyMethodDef module_methods[] = {
    {"getcurrent", module_getcurrent, METH_NOARGS,
     "getcurrent() -> greenlet\n\n"
     "Returns the current greenlet (i.e. the one which called this "
     "function).\n"},
    {"settrace", module_settrace, METH_VARARGS,
     "settrace(callback) -> object\n\n"
     "Sets a new tracing function and returns the previous one.\n"
     "callback(event, (origin, target)) is called on every switch of this\n"
     "thread, with event 'switch' or 'throw'. None removes it.\n"},
    {"gettrace", module_gettrace, METH_NOARGS,
     "gettrace() -> object\n\n"
     "Returns the currently set tracing function, or None.\n"},
    {"_native_backtrace", gl_py_native_backtrace, METH_O,
     "_native_backtrace(g) -> (frames, reached_root) (for greenlet.inspect)"},
    {"_read_stack", gl_py_read_stack, METH_VARARGS,
     "_read_stack(g, address, size) -> bytes (for greenlet.inspect)"},
    {"_threads", gl_py_threads, METH_NOARGS,
     "_threads() -> a dict per thread record (for greenlet.inspect)"},
    {"_set_name", gl_py_set_name, METH_VARARGS,
     "_set_name(g, name or None) (for greenlet.inspect)"},
    {"_labels_of", gl_py_labels_of, METH_O,
     "_labels_of(g) -> (name or None, spawn site dict or None)"},
    {"_record_spawn_sites", gl_py_record_spawn_sites, METH_O,
     "_record_spawn_sites(on) -> whether they were recorded before"},
    {"_monitor_processes", gl_py_monitor_processes, METH_NOARGS,
     "_monitor_processes() -> pids of processes that publish a segment"},
    {"_monitor_read", gl_py_monitor_read, METH_VARARGS,
     "_monitor_read(pid, fresh_within_ms) -> a process's publication"},
    {"_monitor_request", gl_py_monitor_request, METH_VARARGS,
     "_monitor_request(pid, id, kinds, timeout_ms) -> (status, text)"},
    {"_thread_idents", gl_py_thread_idents, METH_NOARGS,
     "_thread_idents() -> {native id: threading ident} of every thread"},
    {"_hazard_scan", gl_py_hazard_scan, METH_NOARGS,
     "_hazard_scan() -> a tuple per word outside the engine that points "
     "into a suspended greenlet's saved stack (for greenlet.inspect.audit)"},
    {"_watch_add", gl_py_watch_add, METH_VARARGS,
     "_watch_add(greenlet, address, holder_object or None): a hardware "
     "write watchpoint on that stack address while it is saved"},
    {"_watch_clear", gl_py_watch_clear, METH_NOARGS,
     "_watch_clear(): stops every watch"},
    {"_watch_list", gl_py_watch_list, METH_NOARGS,
     "_watch_list() -> a tuple per watch"},
    {"_watch_writes", gl_py_watch_writes, METH_NOARGS,
     "_watch_writes() -> (a tuple per write caught, writes not kept)"},
    {"_records", gl_py_records, METH_NOARGS,
     "_records() -> a dict per greenlet record of every thread (for "
     "greenlet.inspect)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module_definition = {
    PyModuleDef_HEAD_INIT, "greenlet._greenlet",
    "Lightweight coroutines on a stack-copying engine that keeps records.",
    -1, module_methods, NULL, NULL, NULL, NULL};

/* Upstream also puts these on the type: greenlet.greenlet.getcurrent(),
 * greenlet.greenlet.error... The type is static, so its dict is written
 * directly, then the attribute caches are told. */
static int add_to_type(PyObject *module)
{
    static const char *const names[] = {"getcurrent", "error", "GreenletExit",
                                        "settrace", "gettrace"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        PyObject *value = PyObject_GetAttrString(module, names[i]);
        int failed = !value || PyDict_SetItemString(PyGreenlet_Type.tp_dict,
                                                    names[i], value) < 0;
        Py_XDECREF(value);
        if (failed)
            return -1;
    }
    PyType_Modified(&PyGreenlet_Type);
    return 0;
}

static int add_constants(PyObject *module)
{
    PyObject *capsule = PyCapsule_New(c_api, "greenlet._C_API", NULL);
    if (!capsule || PyModule_AddObject(module, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        return -1;
    }
    Py_INCREF(&PyGreenlet_Type);
    Py_INCREF(PyExc_GreenletError);
    Py_INCREF(PyExc_GreenletExit);
    if (PyModule_AddObject(module, "greenlet", (PyObject *)&PyGreenlet_Type) ||
        PyModule_AddObject(module, "error", PyExc_GreenletError) ||
        PyModule_AddObject(module, "GreenletExit", PyExc_GreenletExit) ||
        PyModule_AddObject(module, "GREENLET_USE_GC", Py_NewRef(Py_True)) ||
        PyModule_AddObject(module, "GREENLET_USE_TRACING",
                           Py_NewRef(Py_True)) ||
        PyModule_AddObject(module, "GREENLET_USE_CONTEXT_VARS",
                           Py_NewRef(Py_True)) ||
        PyModule_AddObject(module, "GREENLET_USE_STANDARD_THREADING",
                           Py_NewRef(Py_True)))
        return -1;
    return 0;
}

PyMODINIT_FUNC PyInit__greenlet(void);
PyMODINIT_FUNC PyInit__greenlet(void)
{
    if (PyType_Ready(&PyGreenlet_Type) < 0)
        return NULL;
    PyExc_GreenletError = PyErr_NewException("greenlet.error", NULL, NULL);
    PyExc_GreenletExit = PyErr_NewException("greenlet.GreenletExit",
                                            PyExc_BaseException, NULL);
    if (!PyExc_GreenletError || !PyExc_GreenletExit)
        return NULL;
    fill_c_api();
    if (gl_py_deferred_init() < 0 || gl_py_switching_init() < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_definition);
    if (!module)
        return NULL;
    gl_py_labels_init();
    if (add_constants(module) < 0 || gl_py_upstream_helpers_init(module) < 0 ||
        gl_py_unswitchable_init(module) < 0 || add_to_type(module) < 0 ||
        gl_py_monitor_init(module) < 0 ||
        gl_py_monitor_client_init(module) < 0 || gl_py_watch_init(module) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
