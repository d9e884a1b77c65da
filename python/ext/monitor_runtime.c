/*
 * monitor_runtime.c -- what CPython adds to the monitor segment: for each
 * greenlet its name, where it is (innermost Python frame), and where it
 * was spawned; for each thread its threading name; and, on request, a
 * greenlet's full Python and native stacks (src/monitor.c calls these
 * from its own thread; see gl_monitor_runtime in glengine.h).
 *
 * The monitor's thread is not a Python thread: enter() takes the GIL with
 * PyGILState_Ensure, and while it is held no greenlet switches, is created
 * or is freed, so the binding pointers in the engine's records stay valid
 * and every suspended greenlet's stack stays as it is. Nothing here runs
 * Python code or releases the GIL (that would let the world move under
 * the copied records): strings are read straight from code objects and
 * attributes through the generic getter.
 *
 * At interpreter exit, an atexit callback turns this off before the
 * interpreter starts to come apart; enter() checks that again once it has
 * the GIL. The monitor then publishes the engine's facts only.
 */
#include "binding.h"
#include "glinspect.h"
#include "monitor_layout.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int python_alive;
static PyGILState_STATE gil_state; /* only the monitor's thread uses it */
static char runtime_name[48];
static PyObject *threading_name; /* "threading", interned */

static int enter(void *context)
{
    (void)context;
    if (!atomic_load(&python_alive) || !Py_IsInitialized())
        return 1;
    gil_state = PyGILState_Ensure();
    if (!atomic_load(&python_alive)) {
        PyGILState_Release(gil_state);
        return 1;
    }
    return 0;
}

static void leave(void *context)
{
    (void)context;
    PyGILState_Release(gil_state);
}

/* The UTF-8 of a str (borrowed, valid while the str lives), or empty. */
static gl_monitor_text text_of(PyObject *object)
{
    gl_monitor_text text = {NULL, 0};
    Py_ssize_t length;
    if (object && PyUnicode_Check(object)) {
        text.text = PyUnicode_AsUTF8AndSize(object, &length);
        if (text.text)
            text.length = (size_t)length;
        else
            PyErr_Clear();
    }
    return text;
}

static int first_frame(PyCodeObject *code, int line, void *context)
{
    gl_monitor_place *place = context;
    place->function = text_of(code->co_qualname);
    place->file = text_of(code->co_filename);
    place->line = line > 0 ? (unsigned)line : 0;
    return 1;
}

/* The object bound to a record, if it is alive (not in the middle of its
 * deallocation); borrowed. */
static PyGreenlet *bound_greenlet(void *binding)
{
    PyGreenlet *greenlet = binding;
    if (!greenlet || Py_REFCNT(greenlet) <= 0 || !greenlet->pimpl)
        return NULL;
    return greenlet;
}

/* A NEW greenlet is not anywhere yet: its place is where its run function
 * starts, when that is a Python function. */
static void place_of_new(PyGreenlet *greenlet, gl_monitor_place *place)
{
    PyObject *run = greenlet->pimpl->run;
    if (run && PyMethod_Check(run))
        run = PyMethod_GET_FUNCTION(run);
    if (!run || !PyFunction_Check(run))
        return;
    PyCodeObject *code = (PyCodeObject *)PyFunction_GET_CODE(run);
    place->function = text_of(code->co_qualname);
    place->file = text_of(code->co_filename);
    place->line = (unsigned)code->co_firstlineno;
}

static void walk_greenlet_frames(const gl_greenlet_info *info,
                                 PyGreenlet *greenlet,
                                 gl_py_frame_visitor *visit, void *context)
{
    if (info->state == GL_STATE_SUSPENDED)
        gl_py_state_walk_frames(&greenlet->pimpl->state, visit, context);
    else if (info->state == GL_STATE_RUNNING)
        gl_py_thread_walk_frames((unsigned long)info->thread_os_id, visit,
                                 context);
}

static void describe_greenlet(const gl_greenlet_info *info,
                              gl_monitor_place *place, void *context)
{
    (void)context;
    PyGreenlet *greenlet = bound_greenlet(info->binding);
    if (!greenlet)
        return;
    gl_py_impl *impl = greenlet->pimpl;
    static const char main_name[] = "main greenlet";
    if (impl->name) {
        place->name = text_of(impl->name);
    } else if (info->is_main) {
        place->name.text = main_name;
        place->name.length = sizeof main_name - 1;
    } else {
        const char *type = Py_TYPE(greenlet)->tp_name;
        place->name.text = type;
        place->name.length = strlen(type);
    }
    if (info->state == GL_STATE_NEW)
        place_of_new(greenlet, place);
    else
        walk_greenlet_frames(info, greenlet, first_frame, place);
    place->spawn_function = text_of(impl->spawn_function);
    place->spawn_file = text_of(impl->spawn_file);
    place->spawn_line = (unsigned)impl->spawn_line;
}

/* threading.Thread objects are found in threading._active; their _name
 * and _native_id are read with the generic getter (no Python code runs). */
static PyObject *attribute(PyObject *object, const char *name)
{
    PyObject *key = PyUnicode_FromString(name);
    PyObject *value = key ? PyObject_GenericGetAttr(object, key) : NULL;
    Py_XDECREF(key);
    if (!value)
        PyErr_Clear();
    return value; /* new reference, or NULL */
}

static void describe_thread(const gl_thread_info *info, gl_monitor_text *name,
                            void *context)
{
    (void)context;
    if (info->exited)
        return;
    PyObject *threading = PyImport_GetModule(threading_name);
    PyObject *active = threading ? attribute(threading, "_active") : NULL;
    Py_XDECREF(threading);
    if (PyErr_Occurred())
        PyErr_Clear();
    if (!active || !PyDict_Check(active)) {
        Py_XDECREF(active);
        return;
    }
    Py_ssize_t position = 0;
    PyObject *key, *thread;
    while (PyDict_Next(active, &position, &key, &thread)) {
        PyObject *native_id = attribute(thread, "_native_id");
        int same = native_id && PyLong_Check(native_id) &&
                   PyLong_AsLongLong(native_id) == info->os_id;
        Py_XDECREF(native_id);
        PyErr_Clear();
        if (!same)
            continue;
        PyObject *thread_name = attribute(thread, "_name");
        /* The Thread object keeps its name alive after we drop ours. */
        *name = text_of(thread_name);
        Py_XDECREF(thread_name);
        break;
    }
    Py_DECREF(active);
}

/* ------------------------------------------------------------- answers */

struct answer {
    char *buffer;
    size_t capacity, size;
    int truncated;
};

/* Appends printf-formatted text, with tabs and newlines inside fields
 * already replaced by the caller. */
static void add_line(struct answer *a, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void add_line(struct answer *a, const char *format, ...)
{
    if (a->truncated)
        return;
    va_list arguments;
    va_start(arguments, format);
    int n = vsnprintf(a->buffer + a->size, a->capacity - a->size, format,
                      arguments);
    va_end(arguments);
    if (n < 0 || (size_t)n >= a->capacity - a->size) {
        a->truncated = 1;
        return;
    }
    a->size += (size_t)n;
}

/* A field of the answer: at most `limit` bytes of a str, tabs and
 * newlines made spaces (the line format forbids them), in `out`. */
static const char *field(PyObject *object, char *out, size_t limit)
{
    gl_monitor_text text = text_of(object);
    size_t n = text.length < limit - 1 ? text.length : limit - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = text.text[i] == '\t' || text.text[i] == '\n' ||
                         text.text[i] == '\r'
                     ? ' '
                     : text.text[i];
    out[n] = '\0';
    return out;
}

static int python_line(PyCodeObject *code, int line, void *context)
{
    char function[256], file[1024];
    add_line(context, "python\t%s\t%s\t%d\n",
             field(code->co_qualname, function, sizeof function),
             field(code->co_filename, file, sizeof file), line);
    return ((struct answer *)context)->truncated;
}

static void sanitize(char *text)
{
    for (; *text; text++)
        if (*text == '\t' || *text == '\n' || *text == '\r')
            *text = ' ';
}

#define MAX_NATIVE_FRAMES 128

static void native_lines(struct answer *a, gl_greenlet *record)
{
    gl_native_frame *frames = PyMem_RawMalloc(MAX_NATIVE_FRAMES *
                                              sizeof *frames);
    size_t count = 0;
    int outcome = frames ? gl_native_backtrace(record, frames,
                                               MAX_NATIVE_FRAMES, &count)
                         : GL_ENOMEM;
    if (outcome < 0)
        add_line(a, "note\tno native stack: %s\n", gl_strerror(outcome));
    for (size_t i = 0; outcome >= 0 && i < count; i++) {
        sanitize(frames[i].function);
        sanitize(frames[i].object);
        add_line(a, "native\t%s\t%#llx\t%s\t%#llx\n",
                 frames[i].function[0] ? frames[i].function : "??",
                 (unsigned long long)frames[i].offset, frames[i].object,
                 (unsigned long long)frames[i].ip);
    }
    if (outcome == 0)
        add_line(a, "note\tthe unwinder stopped before the greenlet's "
                    "root frame\n");
    PyMem_RawFree(frames);
}

struct lookup {
    uint64_t id;
    gl_greenlet_info found;
    int matched;
};

static int match_id(const gl_greenlet_info *info, void *context)
{
    struct lookup *lookup = context;
    if (info->id != lookup->id)
        return 0;
    lookup->found = *info;
    lookup->matched = 1;
    return 1;
}

static int answer(uint64_t id, unsigned kinds, char *buffer, size_t capacity,
                  size_t *size, void *context)
{
    (void)context;
    struct lookup lookup = {id, {0}, 0};
    gl_registry_walk(NULL, match_id, &lookup);
    PyGreenlet *greenlet =
        lookup.matched ? bound_greenlet(lookup.found.binding) : NULL;
    if (!greenlet)
        return GL_MONITOR_ANSWER_NO_SUCH_GREENLET;
    struct answer a = {buffer, capacity, 0, 0};
    const gl_greenlet_info *info = &lookup.found;
    if (kinds & GL_MONITOR_REQUEST_PYTHON_STACK)
        walk_greenlet_frames(info, greenlet, python_line, &a);
    if (kinds & GL_MONITOR_REQUEST_NATIVE_STACK) {
        if (info->state == GL_STATE_SUSPENDED && !info->is_main)
            native_lines(&a, greenlet->pimpl->record);
        else if (info->state == GL_STATE_SUSPENDED)
            add_line(&a, "note\ta thread's main greenlet: its native frames "
                         "go on above the switch, into the thread's start\n");
        else
            add_line(&a, "note\t%s: no suspended native stack\n",
                     info->state == GL_STATE_RUNNING ? "running"
                     : info->state == GL_STATE_NEW   ? "not started"
                                                     : "dead");
    }
    *size = a.size;
    return a.truncated ? GL_MONITOR_ANSWER_TRUNCATED : GL_MONITOR_ANSWER_OK;
}

/* ------------------------------------------------------------ lifecycle */

static const gl_monitor_runtime runtime = {
    runtime_name, enter, leave, describe_greenlet, describe_thread, answer,
    NULL};

static PyObject *interpreter_exits(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    atomic_store(&python_alive, 0);
    Py_RETURN_NONE;
}

static PyMethodDef exit_callback = {
    "_monitor_interpreter_exits", interpreter_exits, METH_NOARGS,
    "Turns the monitor's CPython part off (registered with atexit)."};

int gl_py_monitor_init(PyObject *module)
{
    snprintf(runtime_name, sizeof runtime_name, "CPython %s",
             Py_GetVersion());
    char *space = strchr(runtime_name + strlen("CPython "), ' ');
    if (space)
        *space = '\0'; /* "CPython 3.11.2", without the build details */
    threading_name = PyUnicode_InternFromString("threading");
    if (!threading_name)
        return -1;
    PyObject *callback = PyCFunction_New(&exit_callback, module);
    PyObject *atexit = PyImport_ImportModule("atexit");
    PyObject *result = callback && atexit
        ? PyObject_CallMethod(atexit, "register", "O", callback)
        : NULL;
    Py_XDECREF(callback);
    Py_XDECREF(atexit);
    if (!result)
        return -1;
    Py_DECREF(result);
    atomic_store(&python_alive, 1);
    gl_monitor_set_runtime(&runtime);
    return 0;
}
