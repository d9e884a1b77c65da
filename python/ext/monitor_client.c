/*
 * monitor_client.c -- inspect/'s monitor reader (glmonitor.h) for Python:
 * the functions behind `python -m greenlet.inspect` and its PID argument.
 * _monitor_processes() lists the pids that publish a segment;
 * _monitor_read(pid, fresh_within_ms) returns one process's publication as
 * plain data; _monitor_request(pid, id, kinds, timeout_ms) asks it for one
 * greenlet's stacks. Failures raise greenlet._greenlet.MonitorError, whose
 * `code` is the engine's error name ("GL_ENOPROCESS", ...), so that the
 * command can map each to its exit status. The GIL is released while we
 * wait for the other process.
 */
#include "binding.h"
#include "glmonitor.h"
#include "monitor_layout.h"

#include <stdlib.h>
#include <string.h>

static PyObject *monitor_error; /* greenlet._greenlet.MonitorError */

static PyObject *raise_monitor_error(int code, long long pid)
{
    PyObject *value = Py_BuildValue("(sN)", gl_error_name(code),
                                    PyUnicode_FromFormat("pid %lld: %s", pid,
                                                         gl_strerror(code)));
    if (value) {
        PyErr_SetObject(monitor_error, value);
        Py_DECREF(value);
    }
    return NULL;
}

/* Text from the other process as a str: it promises UTF-8, but a buggy
 * or hostile process may break the promise, so bad bytes become U+FFFD. A
 * new reference, or NULL with an exception set. */
static PyObject *text(const char *bytes, size_t size)
{
    return PyUnicode_DecodeUTF8(bytes, (Py_ssize_t)size, "replace");
}

static PyObject *string(const char *bytes)
{
    return text(bytes, strlen(bytes));
}

static const char *const state_names[] = {"new", "running", "suspended",
                                          "dead"};

static PyObject *thread_as_dict(const gl_monitor_thread_view *t)
{
    return Py_BuildValue(
        "{s:K,s:L,s:O,s:K,s:K,s:K,s:K,s:K,s:N}", "thread",
        (unsigned long long)t->serial, "native_id", (long long)t->os_id,
        "exited", t->exited ? Py_True : Py_False, "switches",
        (unsigned long long)t->switches, "current_id",
        (unsigned long long)t->current_id, "saved_bytes",
        (unsigned long long)t->saved_bytes, "saved_bytes_peak",
        (unsigned long long)t->saved_bytes_peak, "greenlets",
        (unsigned long long)t->greenlets, "name", string(t->name));
}

/* A place (function, file, line) as a dict, or None. */
static PyObject *place(int present, const char *function, const char *file,
                       unsigned line)
{
    if (!present)
        Py_RETURN_NONE;
    return Py_BuildValue("{s:N,s:N,s:I}", "function", string(function),
                         "file", string(file), "line", line);
}

static PyObject *greenlet_as_dict(const gl_monitor_greenlet_view *g)
{
    PyObject *where = place(g->has_place, g->function, g->file, g->line);
    PyObject *spawn = place(g->has_spawn_site, g->spawn_function,
                            g->spawn_file, g->spawn_line);
    if (!where || !spawn) {
        Py_XDECREF(where);
        Py_XDECREF(spawn);
        return NULL;
    }
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:s,s:O,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:N,s:N,s:N,s:O}",
        "id",
        (unsigned long long)g->id, "parent_id",
        (unsigned long long)g->parent_id, "thread",
        (unsigned long long)g->thread_serial, "state", state_names[g->state],
        "main", g->is_main ? Py_True : Py_False, "stack_pointer",
        (unsigned long long)g->stack_pointer, "stack_stop",
        (unsigned long long)g->stack_stop, "saved_bytes",
        (unsigned long long)g->saved_bytes, "saved_bytes_peak",
        (unsigned long long)g->saved_bytes_peak, "switches",
        (unsigned long long)g->switches, "created_ns",
        (unsigned long long)g->created_ns, "last_ran_serial",
        (unsigned long long)g->last_ran_serial, "name", string(g->name), "where",
        where, "spawn_site", spawn, "hazard",
        g->has_hazard ? Py_True : Py_False);
}

/* Appends one dict per item, made by `convert`. 0, or -1 with an error. */
static int fill_list(PyObject *list, const void *items, size_t count,
                     size_t item_size, PyObject *(*convert)(const void *))
{
    for (size_t i = 0; i < count; i++) {
        PyObject *item = convert((const char *)items + i * item_size);
        if (!item || PyList_Append(list, item) < 0) {
            Py_XDECREF(item);
            return -1;
        }
        Py_DECREF(item);
    }
    return 0;
}

static PyObject *convert_thread(const void *item)
{
    return thread_as_dict(item);
}

static PyObject *convert_greenlet(const void *item)
{
    return greenlet_as_dict(item);
}

static PyObject *snapshot_as_dict(const gl_monitor_snapshot *s, int fresh)
{
    PyObject *threads = PyList_New(0);
    PyObject *greenlets = PyList_New(0);
    if (!threads || !greenlets ||
        fill_list(threads, s->threads, s->thread_count, sizeof *s->threads,
                  convert_thread) < 0 ||
        fill_list(greenlets, s->greenlets, s->greenlet_count,
                  sizeof *s->greenlets, convert_greenlet) < 0) {
        Py_XDECREF(threads);
        Py_XDECREF(greenlets);
        return NULL;
    }
    return Py_BuildValue(
        "{s:L,s:N,s:O,s:O,s:K,s:K,s:K,s:N,s:N}", "pid", (long long)s->pid,
        "runtime", string(s->runtime), "has_places", s->has_places ? Py_True : Py_False,
        "fresh", fresh ? Py_True : Py_False, "publications",
        (unsigned long long)s->publications, "published_ns",
        (unsigned long long)s->published_ns, "saved_bytes",
        (unsigned long long)s->process_saved_bytes, "threads", threads,
        "greenlets", greenlets);
}

PyObject *gl_py_monitor_processes(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    size_t capacity = 256, count = 0;
    int64_t *pids = NULL;
    for (;;) {
        int64_t *grown = realloc(pids, capacity * sizeof *pids);
        if (!grown) {
            free(pids);
            return PyErr_NoMemory();
        }
        pids = grown;
        int error;
        Py_BEGIN_ALLOW_THREADS
        error = gl_monitor_find_processes(pids, capacity, &count);
        Py_END_ALLOW_THREADS
        if (error) {
            free(pids);
            return raise_monitor_error(error, 0);
        }
        if (count <= capacity)
            break;
        capacity = count + 64; /* more appeared: try again */
    }
    PyObject *list = PyList_New((Py_ssize_t)count);
    for (size_t i = 0; list && i < count; i++) {
        PyObject *pid = PyLong_FromLongLong((long long)pids[i]);
        if (!pid)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, pid);
    }
    free(pids);
    return list;
}

PyObject *gl_py_monitor_read(PyObject *module, PyObject *args)
{
    (void)module;
    long long pid;
    int fresh_within_ms;
    if (!PyArg_ParseTuple(args, "Li:_monitor_read", &pid, &fresh_within_ms))
        return NULL;
    gl_monitor_reader *reader = NULL;
    gl_monitor_snapshot *snapshot = NULL;
    int freshness = 0, error;
    Py_BEGIN_ALLOW_THREADS
    error = gl_monitor_open(&reader, pid);
    if (!error)
        error = gl_monitor_read(reader, fresh_within_ms, &freshness,
                                &snapshot);
    if (reader)
        gl_monitor_close(reader);
    Py_END_ALLOW_THREADS
    if (error)
        return raise_monitor_error(error, pid);
    PyObject *result = snapshot_as_dict(snapshot, freshness == 0);
    gl_monitor_snapshot_free(snapshot);
    return result;
}

PyObject *gl_py_monitor_request(PyObject *module, PyObject *args)
{
    (void)module;
    long long pid;
    unsigned long long id;
    unsigned int kinds;
    int timeout_ms;
    if (!PyArg_ParseTuple(args, "LKIi:_monitor_request", &pid, &id, &kinds,
                          &timeout_ms))
        return NULL;
    gl_monitor_reader *reader = NULL;
    char *answer = NULL;
    size_t size = 0;
    int status = 0, error;
    Py_BEGIN_ALLOW_THREADS
    error = gl_monitor_open(&reader, pid);
    if (!error)
        error = gl_monitor_request(reader, id, kinds, timeout_ms, &answer,
                                   &size, &status);
    if (reader)
        gl_monitor_close(reader);
    Py_END_ALLOW_THREADS
    if (error)
        return raise_monitor_error(error, pid);
    PyObject *result = Py_BuildValue("(iN)", status, text(answer, size));
    free(answer);
    return result;
}

int gl_py_monitor_client_init(PyObject *module)
{
    monitor_error = PyErr_NewExceptionWithDoc(
        "greenlet._greenlet.MonitorError",
        "Reading another process's monitor segment failed. args: (code, "
        "message); code is the engine's error name, e.g. GL_ENOPROCESS.",
        PyExc_Exception, NULL);
    if (!monitor_error)
        return -1;
    Py_INCREF(monitor_error);
    if (PyModule_AddObject(module, "MonitorError", monitor_error) < 0) {
        Py_DECREF(monitor_error);
        return -1;
    }
    /* The request kinds and answer statuses of monitor_layout.h. */
    if (PyModule_AddIntConstant(module, "_MONITOR_PYTHON_STACK",
                                GL_MONITOR_REQUEST_PYTHON_STACK) ||
        PyModule_AddIntConstant(module, "_MONITOR_NATIVE_STACK",
                                GL_MONITOR_REQUEST_NATIVE_STACK) ||
        PyModule_AddIntConstant(module, "_MONITOR_AUDIT",
                                GL_MONITOR_REQUEST_AUDIT) ||
        PyModule_AddIntConstant(module, "_MONITOR_WATCH",
                                GL_MONITOR_REQUEST_WATCH) ||
        PyModule_AddIntConstant(module, "_MONITOR_ANSWER_OK",
                                GL_MONITOR_ANSWER_OK) ||
        PyModule_AddIntConstant(module, "_MONITOR_ANSWER_NO_SUCH_GREENLET",
                                GL_MONITOR_ANSWER_NO_SUCH_GREENLET) ||
        PyModule_AddIntConstant(module, "_MONITOR_ANSWER_UNAVAILABLE",
                                GL_MONITOR_ANSWER_UNAVAILABLE) ||
        PyModule_AddIntConstant(module, "_MONITOR_ANSWER_TRUNCATED",
                                GL_MONITOR_ANSWER_TRUNCATED))
        return -1;
    return 0;
}
