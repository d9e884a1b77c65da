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
 * the copied records): the collector is off meanwhile (it runs
 * finalizers), strings are encoded here without raising, and thread
 * names come from dicts, never through getattr.
 *
 * At interpreter exit, an atexit callback turns this off before the
 * interpreter starts to come apart; enter() checks that again once it has
 * the GIL. The monitor then publishes the engine's facts only.
 */
#include "binding.h"
#include "glinspect.h"
#include "monitor_layout.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static atomic_int python_alive;
/* Held from the check of python_alive until the GIL is ours, so that the
 * atexit callback can wait out an enter() that has passed the check. */
static pthread_mutex_t enter_mutex = PTHREAD_MUTEX_INITIALIZER;
static PyGILState_STATE gil_state; /* only the monitor's thread uses these */
static int gc_was_enabled;
static char runtime_name[48];
/* Interned names, made at init: looking them up allocates nothing. */
static PyObject *threading_name, *active_name, *native_id_name, *name_name;

/* Takes the GIL, and stops the cyclic collector until leave(): an
 * allocation here must not run finalizers, which are Python code. */
static int enter(void *context)
{
    (void)context;
    pthread_mutex_lock(&enter_mutex);
    if (!atomic_load(&python_alive) || !Py_IsInitialized()) {
        pthread_mutex_unlock(&enter_mutex);
        return 1;
    }
    gil_state = PyGILState_Ensure();
    pthread_mutex_unlock(&enter_mutex);
    if (!atomic_load(&python_alive)) {
        PyGILState_Release(gil_state);
        return 1;
    }
    gc_was_enabled = PyGC_Disable();
    return 0;
}

static void leave(void *context)
{
    (void)context;
    PyErr_Clear();
    if (gc_was_enabled)
        PyGC_Enable();
    PyGILState_Release(gil_state);
}

/* Scratch space for strings that are not ASCII, one per text of a place
 * (the engine copies each text as soon as the describe call returns). */
enum { NAME_TEXT, FUNCTION_TEXT, FILE_TEXT, SPAWN_FUNCTION_TEXT,
       SPAWN_FILE_TEXT, THREAD_TEXT, ANSWER_TEXT, TEXTS };
static char scratch[TEXTS][1024];

static size_t utf8_width(Py_UCS4 c)
{
    if (c < 0x80)
        return 1;
    if (c < 0x800)
        return 2;
    return c < 0x10000 || (c >= 0xD800 && c < 0xE000) ? 3 : 4;
}

static size_t put_utf8(Py_UCS4 c, char *out)
{
    if (c >= 0xD800 && c < 0xE000)
        c = 0xFFFD; /* a lone surrogate (os.fsdecode makes them) */
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* The UTF-8 of a str, without raising or allocating (either could start
 * the collector, or leave an exception behind): an ASCII str is read in
 * place (valid while it lives); another is encoded into scratch[slot],
 * lone surrogates as U+FFFD, keeping its end if it is too long. Empty for
 * anything that is not a ready str. */
static gl_monitor_text text_of(PyObject *object, int slot)
{
    gl_monitor_text text = {NULL, 0};
    if (!object || !PyUnicode_Check(object) || !PyUnicode_IS_READY(object))
        return text;
    Py_ssize_t length = PyUnicode_GET_LENGTH(object);
    if (PyUnicode_IS_ASCII(object)) {
        text.text = PyUnicode_DATA(object);
        text.length = (size_t)length;
        return text;
    }
    int kind = PyUnicode_KIND(object);
    const void *data = PyUnicode_DATA(object);
    Py_ssize_t start = length;
    size_t size = 0;
    while (start > 0) {
        size_t width = utf8_width(PyUnicode_READ(kind, data, start - 1));
        if (size + width > sizeof scratch[slot])
            break;
        size += width;
        start--;
    }
    char *out = scratch[slot];
    for (Py_ssize_t i = start; i < length; i++)
        out += put_utf8(PyUnicode_READ(kind, data, i), out);
    text.text = scratch[slot];
    text.length = size;
    return text;
}

static int first_frame(PyCodeObject *code, int line, void *context)
{
    gl_monitor_place *place = context;
    place->function = text_of(gl_py_code_name(code), FUNCTION_TEXT);
    place->file = text_of(code->co_filename, FILE_TEXT);
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
    place->function = text_of(gl_py_code_name(code), FUNCTION_TEXT);
    place->file = text_of(code->co_filename, FILE_TEXT);
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
        place->name = text_of(impl->name, NAME_TEXT);
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
    place->spawn_function =
        text_of(impl->spawn_function, SPAWN_FUNCTION_TEXT);
    place->spawn_file = text_of(impl->spawn_file, SPAWN_FILE_TEXT);
    place->spawn_line = (unsigned)impl->spawn_line;
    place->hazard = gl_py_hazard_flagged(info->id);
}

/* An entry of a dict (borrowed, or NULL): str keys, so no Python code. */
static PyObject *entry(PyObject *dict, PyObject *key)
{
    PyObject *value = dict && PyDict_Check(dict)
                          ? PyDict_GetItemWithError(dict, key)
                          : NULL;
    PyErr_Clear();
    return value;
}

/* An attribute from the object's own __dict__ (a new reference, or
 * NULL): no descriptor, __getattr__ or property can run. */
static PyObject *instance_attribute(PyObject *object, PyObject *name)
{
    PyObject *dict = PyObject_GenericGetDict(object, NULL);
    PyErr_Clear();
    PyObject *value = Py_XNewRef(entry(dict, name));
    Py_XDECREF(dict);
    return value;
}

/* threading.Thread objects are found in threading._active (through
 * sys.modules and the module's dict, not imports or getattr). */
static void describe_thread(const gl_thread_info *info, gl_monitor_text *name,
                            void *context)
{
    (void)context;
    if (info->exited)
        return;
    PyObject *threading = entry(PyImport_GetModuleDict(), threading_name);
    if (!threading || !PyModule_Check(threading))
        return;
    PyObject *active = entry(PyModule_GetDict(threading), active_name);
    if (!active || !PyDict_Check(active))
        return;
    Py_ssize_t position = 0;
    PyObject *key, *thread;
    while (PyDict_Next(active, &position, &key, &thread)) {
        PyObject *native_id = instance_attribute(thread, native_id_name);
        int same = native_id && PyLong_CheckExact(native_id) &&
                   PyLong_AsLongLong(native_id) == info->os_id;
        Py_XDECREF(native_id);
        PyErr_Clear();
        if (!same)
            continue;
        PyObject *thread_name = instance_attribute(thread, name_name);
        /* The Thread object keeps its name alive after we drop ours. */
        *name = text_of(thread_name, THREAD_TEXT);
        Py_XDECREF(thread_name);
        break;
    }
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

/* A field of the answer: the end of a str, at most `limit` - 1 bytes,
 * tabs and newlines made spaces (the line format forbids them), in
 * `out`. */
static const char *field(PyObject *object, char *out, size_t limit)
{
    gl_monitor_text text = text_of(object, ANSWER_TEXT);
    const char *from = text.text;
    size_t n = text.length;
    if (n > limit - 1) {
        from += n - (limit - 1);
        n = limit - 1;
        while (n && ((unsigned char)*from & 0xC0) == 0x80) {
            from++; /* start at a character, not inside one */
            n--;
        }
    }
    for (size_t i = 0; i < n; i++)
        out[i] = from[i] == '\t' || from[i] == '\n' || from[i] == '\r'
                     ? ' '
                     : from[i];
    out[n] = '\0';
    return out;
}

static int python_line(PyCodeObject *code, int line, void *context)
{
    char function[256], file[1024];
    add_line(context, "python\t%s\t%s\t%d\n",
             field(gl_py_code_name(code), function, sizeof function),
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
        add_line(a, "native\t%s\t0x%llx\t%s\t0x%llx\n",
                 frames[i].function[0] ? frames[i].function : "??",
                 (unsigned long long)frames[i].offset, frames[i].object,
                 (unsigned long long)frames[i].ip);
    }
    if (outcome == 0)
        add_line(a, "note\tthe unwinder stopped before the greenlet's "
                    "root frame\n");
    if (frames) /* their stack pointers: not to be left for the audit */
        explicit_bzero(frames, count * sizeof *frames);
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

/* The writes the watches caught, a line each (monitor_layout.h). */
static void write_lines(struct answer *a)
{
    gl_watch_write *caught = PyMem_RawMalloc(GL_WATCH_WRITES * sizeof *caught);
    size_t count = caught ? gl_watch_writes(caught, GL_WATCH_WRITES, NULL) : 0;
    for (size_t i = 0; i < count; i++) {
        char frames[1024] = "";
        size_t used = 0;
        for (size_t f = 0; f < caught[i].frame_count && f < 8; f++) {
            char function[128];
            uintptr_t offset;
            const char *object;
            gl_py_name_ip(caught[i].ips[f], function, sizeof function, &offset,
                          &object);
            const char *slash = strrchr(object, '/');
            int n = snprintf(frames + used, sizeof frames - used,
                             "%s%s+0x%" PRIxPTR " (%s)", f ? " < " : "",
                             function[0] ? function : "??", offset,
                             slash ? slash + 1 : object);
            if (n < 0 || (size_t)n >= sizeof frames - used)
                break;
            used += (size_t)n;
        }
        sanitize(frames);
        add_line(a, "write\t%" PRIu64 "\t0x%" PRIxPTR "\t%" PRId64 "\t%s\t%s\t%s\n",
                 caught[i].greenlet_id, caught[i].address,
                 caught[i].writer_thread,
                 caught[i].kind == GL_WATCH_FROM_ANOTHER_THREAD
                     ? "from another thread"
                     : "by the holder's code",
                 caught[i].saved ? "saved" : "live", frames);
    }
    if (caught)
        explicit_bzero(caught, count * sizeof *caught);
    PyMem_RawFree(caught);
}

/* The audit's hits, a line each (monitor_layout.h); with `watch`, their
 * addresses watched too. */
static void audit_lines(struct answer *a, int watch)
{
    gl_py_hazard *hits;
    size_t count;
    int code = gl_py_hazard_audit(&hits, &count);
    if (code) {
        add_line(a, "note\tthe audit failed: %s\n", gl_strerror(code));
        return;
    }
    if (count == 0)
        add_line(a, "note\tno hazard: no word outside the engine points "
                    "into a saved stack\n");
    if (watch && count) {
        const char *failure;
        int watched = gl_py_watch_hits(hits, count, &failure);
        if (failure)
            add_line(a, "note\tnot watched: %s\n", failure);
        else
            add_line(a, "note\twatching %d address%s for writes\n", watched,
                     watched == 1 ? "" : "es");
    }
    for (size_t i = 0; i < count; i++) {
        gl_hazard_hit *hit = &hits[i].hit;
        if (hit->holder_kind == GL_HAZARD_IN_THREAD_STACK)
            snprintf(hit->object, sizeof hit->object,
                     "[stack of thread %" PRId64 "]",
                     hit->holder_thread_os_id);
        else if (hit->holder_kind == GL_HAZARD_IN_HEAP && hit->allocation)
            snprintf(hit->object, sizeof hit->object,
                     "[heap allocation 0x%" PRIxPTR ", %zu bytes]",
                     hit->allocation, hit->allocation_size);
        else if (hit->holder_kind == GL_HAZARD_IN_HEAP)
            snprintf(hit->object, sizeof hit->object, "[anonymous memory]");
        sanitize(hit->object);
        sanitize(hit->symbol);
        sanitize(hits[i].frame.function);
        sanitize(hits[i].frame.object);
        add_line(a,
                 "hazard\t%" PRIu64 "\t0x%" PRIxPTR "\t0x%" PRIxPTR
                 "\t0x%" PRIxPTR "\t0x%" PRIxPTR "\t%s\t%s\t0x%" PRIxPTR
                 "\t%s\t0x%" PRIxPTR "\t%s\t%s\n",
                 hit->greenlet_id, hit->holder, hit->target, hit->region_low,
                 hit->region_high, hit->object, hit->symbol,
                 hit->symbol_offset,
                 hits[i].has_frame ? hits[i].frame.function : "",
                 hits[i].has_frame ? hits[i].frame.offset : 0,
                 hits[i].has_frame ? hits[i].frame.object : "",
                 hit->saved ? "saved" : "live");
    }
    gl_py_hazards_free(hits, count);
    write_lines(a);
}

static int answer(uint64_t id, unsigned kinds, char *buffer, size_t capacity,
                  size_t *size, void *context)
{
    (void)context;
    if (kinds & GL_MONITOR_REQUEST_AUDIT) { /* of the process: no greenlet */
        struct answer a = {buffer, capacity, 0, 0};
        audit_lines(&a, (kinds & GL_MONITOR_REQUEST_WATCH) != 0);
        *size = a.size;
        return a.truncated ? GL_MONITOR_ANSWER_TRUNCATED
                           : GL_MONITOR_ANSWER_OK;
    }
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

/* At exit, before finalization: after this returns, the monitor's thread
 * never takes the GIL again. An enter() that passed its check waits for
 * the GIL, which we let go of while we wait for it to give up. */
static PyObject *interpreter_exits(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    atomic_store(&python_alive, 0);
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&enter_mutex);
    pthread_mutex_unlock(&enter_mutex);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* A fork child has no monitor thread that could hold the mutex. */
static void reset_enter_mutex_in_child(void)
{
    pthread_mutex_init(&enter_mutex, NULL);
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
    active_name = PyUnicode_InternFromString("_active");
    native_id_name = PyUnicode_InternFromString("_native_id");
    name_name = PyUnicode_InternFromString("_name");
    if (!threading_name || !active_name || !native_id_name || !name_name)
        return -1;
    pthread_atfork(NULL, NULL, reset_enter_mutex_in_child);
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
