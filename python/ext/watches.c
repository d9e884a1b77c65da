/*
 * watches.c -- hardware write watchpoints (inspect/hazard_watch.c) for
 * Python and for extensions: greenlet.inspect.watch() arms them on the
 * addresses the audit found, and an extension that hands out a stack
 * address on purpose registers it through the capsule
 * greenlet._watch_C_API (greenlet.h: PyGreenlet_WatchStack), so that
 * writes through it while its greenlet is swapped out are caught.
 *
 * The functions here take the GIL's protection for granted: the Python
 * side keeps every watched greenlet alive until unwatch(), which is what
 * lets the engine read their records at each refresh.
 */
#include "binding.h"
#include "glinspect.h"
#include "inspect_internal.h"

#include <dlfcn.h>
#include <errno.h>

/* The watched greenlets, kept alive until the watches are cleared (a
 * list, under the GIL). */
static PyObject *kept;

static int keep_watched(PyGreenlet *greenlet)
{
    if (!kept && !(kept = PyList_New(0)))
        return -1;
    /* Greenlets that died since: their watches are gone (refresh). */
    for (Py_ssize_t i = PyList_GET_SIZE(kept); i-- > 0;) {
        PyGreenlet *old = (PyGreenlet *)PyList_GET_ITEM(kept, i);
        gl_greenlet_info info;
        gl_greenlet_get_info(old->pimpl->record, &info);
        if (info.state == GL_STATE_DEAD &&
            PySequence_DelItem(kept, i) < 0)
            return -1;
    }
    return PyList_Append(kept, (PyObject *)greenlet);
}

/* Drops one reference kept for `greenlet`. */
static void release_watched(PyGreenlet *greenlet)
{
    for (Py_ssize_t i = 0; kept && i < PyList_GET_SIZE(kept); i++)
        if (PyList_GET_ITEM(kept, i) == (PyObject *)greenlet) {
            if (PySequence_DelItem(kept, i) < 0)
                PyErr_Clear();
            return;
        }
}

/* GL_EUNAVAILABLE and GL_ENOSPC as Python exceptions; others as usual. */
static PyObject *raise_watch_error(int code)
{
    if (code == GL_EUNAVAILABLE)
        return PyErr_Format(PyExc_OSError, "%s", gl_watch_unavailable());
    if (code == GL_ENOSPC)
        return PyErr_Format(PyExc_OSError,
                            "no free watchpoint: at most %d addresses are "
                            "watched at once",
                            GL_WATCH_MAX);
    return PyErr_Format(PyExc_ValueError, "%s", gl_strerror(code));
}

/* _watch_add(greenlet, address, holder_object or None) */
PyObject *gl_py_watch_add(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *object;
    unsigned long long address;
    const char *holder = NULL;
    if (!PyArg_ParseTuple(args, "O!Kz", &PyGreenlet_Type, &object, &address,
                          &holder))
        return NULL;
    PyGreenlet *greenlet = (PyGreenlet *)object;
    if (!greenlet->pimpl || !greenlet->pimpl->record)
        return PyErr_Format(PyExc_ValueError, "an uninitialized greenlet");
    int code = gl_watch_add((uintptr_t)address, greenlet->pimpl->record,
                            holder);
    if (code)
        return raise_watch_error(code);
    if (keep_watched(greenlet) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyObject *gl_py_watch_clear(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    gl_watch_clear();
    Py_CLEAR(kept);
    Py_RETURN_NONE;
}

/* _watch_list() -> [(address, greenlet_id, owner_thread, armed,
 * own_writes, own_given_up)] */
PyObject *gl_py_watch_list(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    gl_watch_info watched[GL_WATCH_MAX];
    size_t count = gl_watch_list(watched, GL_WATCH_MAX);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < count; i++) {
        PyObject *item = Py_BuildValue(
            "(KKLiKi)", (unsigned long long)watched[i].address,
            (unsigned long long)watched[i].greenlet_id,
            (long long)watched[i].owner_thread, watched[i].armed,
            (unsigned long long)watched[i].own_writes,
            watched[i].own_given_up);
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    return list;
}

void gl_py_name_ip(uintptr_t ip, char *function, size_t size,
                   uintptr_t *offset, const char **object)
{
    Dl_info where;
    function[0] = '\0';
    *offset = 0;
    *object = "";
    /* ip - 1: a return address may be past its function's end */
    if (!dladdr((void *)(ip - 1), &where))
        return;
    *object = where.dli_fname ? where.dli_fname : "";
    if (where.dli_sname && where.dli_saddr) {
        snprintf(function, size, "%s", where.dli_sname);
        *offset = ip - (uintptr_t)where.dli_saddr;
    } else if ((*object)[0] &&
               gl__elf_symbol(*object, (uintptr_t)where.dli_fbase, ip - 1,
                              GL__ELF_FUNCTIONS, function, size, offset)) {
        *offset += 1;
    }
}

/* A frame of a writer's backtrace as a dict: function (dynamic symbol,
 * else the object's own symbol table), offset, object, ip. */
static PyObject *frame_as_dict(uintptr_t ip)
{
    char function[128];
    uintptr_t offset;
    const char *object;
    gl_py_name_ip(ip, function, sizeof function, &offset, &object);
    return Py_BuildValue("{s:s,s:K,s:s,s:K}", "function", function,
                         "offset", (unsigned long long)offset, "object",
                         object, "ip", (unsigned long long)ip);
}

/* _watch_writes() -> ([(address, greenlet_id, owner_thread,
 * writer_thread, kind, saved, time_ns, frames)], dropped) */
PyObject *gl_py_watch_writes(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    gl_watch_write *caught = PyMem_Malloc(GL_WATCH_WRITES * sizeof *caught);
    if (!caught)
        return PyErr_NoMemory();
    uint64_t dropped = 0;
    size_t count = gl_watch_writes(caught, GL_WATCH_WRITES, &dropped);
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < count; i++) {
        PyObject *frames = PyList_New(0);
        for (size_t f = 0; frames && f < caught[i].frame_count; f++) {
            PyObject *frame = frame_as_dict(caught[i].ips[f]);
            if (!frame || PyList_Append(frames, frame) < 0)
                Py_CLEAR(frames);
            Py_XDECREF(frame);
        }
        PyObject *item =
            frames ? Py_BuildValue(
                         "(KKLLiiKN)", (unsigned long long)caught[i].address,
                         (unsigned long long)caught[i].greenlet_id,
                         (long long)caught[i].owner_thread,
                         (long long)caught[i].writer_thread, caught[i].kind,
                         caught[i].saved, (unsigned long long)caught[i].time_ns,
                         frames)
                   : NULL;
        if (!item || PyList_Append(list, item) < 0)
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    explicit_bzero(caught, count * sizeof *caught); /* stack addresses */
    PyMem_Free(caught);
    return list ? Py_BuildValue("(NK)", list, (unsigned long long)dropped)
                : NULL;
}

/* The candidate to watch among hits[first..end) (one holder's): as
 * greenlet.inspect.watch does, the one whose C frame at the address is
 * in the holder's own object, else the first whose bytes are saved. */
static const gl_py_hazard *watch_target(const gl_py_hazard *hits,
                                        size_t first, size_t end)
{
    const gl_py_hazard *saved = NULL;
    for (size_t i = first; i < end; i++) {
        if (hits[i].has_frame && hits[i].hit.object[0] &&
            strcmp(hits[i].frame.object, hits[i].hit.object) == 0)
            return &hits[i];
        if (!saved && hits[i].hit.saved)
            saved = &hits[i];
    }
    return saved;
}

int gl_py_watch_hits(const gl_py_hazard *hits, size_t count,
                     const char **failure)
{
    int watched = 0;
    *failure = NULL;
    for (size_t first = 0, end; first < count && !*failure; first = end) {
        for (end = first + 1;
             end < count && hits[end].hit.holder == hits[first].hit.holder;)
            end++;
        const gl_py_hazard *target = watch_target(hits, first, end);
        PyGreenlet *greenlet =
            target ? gl_py_greenlet_of(target->hit.greenlet_id) : NULL;
        if (!greenlet)
            continue;
        const gl_hazard_hit *hit = &target->hit;
        int code = gl_watch_add(
            hit->target, greenlet->pimpl->record,
            hit->holder_kind == GL_HAZARD_IN_OBJECT ? hit->object : NULL);
        if (code == GL_ENOSPC)
            break;
        if (code)
            *failure = code == GL_EUNAVAILABLE ? gl_watch_unavailable()
                                               : gl_strerror(code);
        else if (keep_watched(greenlet) == 0)
            watched++;
        else
            PyErr_Clear();
    }
    return watched;
}

/* ------------------------------------------------ the extensions' API */

/* PyGreenlet_WatchStack(address): watch `address`, in the calling
 * greenlet's stack, whenever it is swapped out; the holder is the caller's
 * object. 0, or -1 with an exception set. */
static int api_watch_stack(void *address)
{
    PyGreenlet *current = gl_py_current();
    if (!current)
        return -1;
    Dl_info caller;
    const char *holder =
        dladdr(__builtin_return_address(0), &caller) && caller.dli_fname
            ? caller.dli_fname
            : NULL;
    int code = gl_watch_add((uintptr_t)address, current->pimpl->record,
                            holder);
    if (code) {
        raise_watch_error(code);
        return -1;
    }
    return keep_watched(current); /* its record must outlive the watch */
}

/* PyGreenlet_UnwatchStack(address): stop watching it, in the calling
 * greenlet's stack. */
static void api_unwatch_stack(void *address)
{
    PyGreenlet *current = gl_py_current();
    if (!current) {
        PyErr_Clear();
        return;
    }
    gl_watch_remove((uintptr_t)address, current->pimpl->record);
    release_watched(current);
}

static void *watch_api[] = {(void *)api_watch_stack,
                            (void *)api_unwatch_stack};

int gl_py_watch_init(PyObject *module)
{
    PyObject *capsule =
        PyCapsule_New(watch_api, "greenlet._watch_C_API", NULL);
    if (!capsule || PyModule_AddObject(module, "_watch_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        return -1;
    }
    return 0;
}
