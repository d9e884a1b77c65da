/*
 * binding.h -- what the files of the CPython binding share: the greenlet
 * object, its implementation record, and the switch.
 *
 * A greenlet object has the layout that greenlet.h publishes (so that
 * extensions compiled against greenlet 2.x, gevent among them, see the same
 * instance size) and keeps everything else in `pimpl`, which points at a
 * gl_py_impl: the engine record, the run callable until it starts, the
 * parent object, and the interpreter state saved while it does not run.
 */
#ifndef GL_PY_BINDING_H
#define GL_PY_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "cpython_compat.h"
#include "glengine.h"

typedef struct gl_py_impl gl_py_impl;

typedef struct PyGreenlet {
    PyObject_HEAD
    PyObject *weakreflist;
    PyObject *dict;
    gl_py_impl *pimpl;
} PyGreenlet;

struct gl_py_impl {
    gl_greenlet *record;      /* owned; NULL only while being set up */
    PyObject *run;            /* strong; NULL once started */
    PyObject *starting_run;   /* strong: what the first switch looked up as
                                 `run`, from then until the start */
    PyObject *calling_run;    /* strong, while the run function runs: it */
    PyObject *calling_arguments; /* and what it was called with */
    PyGreenlet *parent;       /* strong; NULL for a main greenlet */
    gl_py_saved_state state;  /* the interpreter state while not running */
    unsigned long thread_ident;
    int is_main;
    unsigned forced_failure;  /* GL_PY_FAIL_* (UnswitchableGreenlet) */
    PyObject *name;           /* strong str or NULL: greenlet.inspect.set_name */
    /* Where it was created, when spawn sites are recorded (labels.c). */
    PyObject *spawn_function; /* strong str or NULL */
    PyObject *spawn_file;     /* strong str or NULL */
    int spawn_line;
};

/* Flags of gl_message.thrown as this binding uses them. */
enum {
    GL_PY_THROW = 1,        /* value: a (type, value, traceback) tuple */
    GL_PY_WITH_KEYWORDS = 2 /* value: an (args, kwargs) tuple; else args */
};

extern PyTypeObject PyGreenlet_Type;
extern PyObject *PyExc_GreenletError;
extern PyObject *PyExc_GreenletExit;

#define PyGreenlet_Check(op) PyObject_TypeCheck(op, &PyGreenlet_Type)

/* What the binding keeps per thread (thread_binding.c). */
typedef struct gl_py_thread {
    PyGreenlet *current;      /* strong: the running greenlet */
    PyGreenlet *main;         /* strong: this thread's main greenlet */
    PyGreenlet *to_release;   /* strong: the previous current, to drop */
    PyGreenlet *trace_origin; /* borrowed until the arrival: the origin */
    int trace_thrown;
    int tracing;              /* the outgoing greenlet's trace flag */
    PyObject *trace_function; /* strong, or NULL: greenlet.settrace's */
    void *call_top;           /* while switch() or throw() runs: where its
                                 arguments end (greenlet_type.c) */
    void *call_keywords;      /* and its keyword names, or NULL */
    /* The thread state whose clearing made the binding forget the
     * thread; while it is still current, the thread is ending. */
    PyThreadState *retired_state;
} gl_py_thread;
extern __thread gl_py_thread gl_py_this_thread
    __attribute__((tls_model("initial-exec")));

/* thread_binding.c */
/* The running greenlet of this thread, making its main greenlet object
 * on first use. Borrowed; NULL with an exception set on failure. */
PyGreenlet *gl_py_current_slow(void);
static inline PyGreenlet *gl_py_current(void)
{
    PyGreenlet *current = gl_py_this_thread.current;
    return current ? current : gl_py_current_slow();
}
/* Main greenlet objects alive, all threads; one has been freed. */
Py_ssize_t gl_py_main_greenlets_alive(void);
void gl_py_main_greenlet_freed(void);
/* Cleanups waiting for a thread that holds the GIL: what threads held
 * when they exited, and greenlets handed back to exited threads. */
Py_ssize_t gl_py_pending_cleanups(void);
/* Releases what exited threads left (under the GIL). */
void gl_py_release_leftovers(void);
/* The optional cleanup (get_clocks_used_doing_optional_cleanup): what the
 * frames of a greenlet of an exited thread hold, shown to the collector
 * and released (cpython_compat.c); nothing while it is disabled. */
int gl_py_traverse_orphaned_frames(gl_py_saved_state *state, visitproc visit,
                                   void *arg);
void gl_py_release_orphaned_frames(gl_py_saved_state *state);

/* switching.c */
/* Installs the engine hooks. -1 with an exception set on failure. */
int gl_py_switching_init(void);
/* Switches to `target` with args and kwargs, both stolen (kwargs may be
 * NULL; args NULL: an error is set already); returns what the greenlet
 * that switches back sends, as a new reference, or NULL with an exception
 * set. Stolen, so that no reference to what is sent stays on this C stack
 * while the caller is suspended (see call_run). */
PyObject *gl_py_switch(PyGreenlet *target, PyObject *args, PyObject *kwargs);
/* Raises (type, value, traceback) in `target`; returns like gl_py_switch. */
PyObject *gl_py_throw(PyGreenlet *target, PyObject *type, PyObject *value,
                      PyObject *traceback);
/* The engine's run function for Python greenlets (argument: the object). */
gl_message gl_py_run(void *argument, gl_message first);
/* Kills a suspended greenlet of this thread by raising GreenletExit
 * (with `reason` as its argument; NULL: none) in it, with this greenlet as
 * its parent for the time being. 0, or -1 with an exception set. */
int gl_py_kill(PyGreenlet *greenlet, PyObject *reason);

/* deferred.c */
int gl_py_deferred_init(void);
/* From the deallocation of a greenlet of another (live) thread: keeps it
 * (a new reference) until its own thread kills and releases it. 0, or -1
 * with an exception set (no memory: it leaks). */
int gl_py_defer_release(PyGreenlet *greenlet);
/* Releases the deferred greenlets of the calling thread. */
void gl_py_release_deferred(void);
/* How many deferred greenlets belong to threads that have exited. */
Py_ssize_t gl_py_deferred_of_exited_threads(void);
/* The text of the GreenletExit that kills a dropped greenlet (a str,
 * borrowed). */
PyObject *gl_py_kill_reason(void);

/* upstream_helpers.c: get_pending_cleanup_count() and the others */
int gl_py_upstream_helpers_init(PyObject *module);
/* The optional cleanup's clock() ticks so far, -1 when it is disabled. */
long long gl_py_optional_cleanup_clocks(void);
void gl_py_enable_optional_cleanup(int enable);

/* unswitchable.c: greenlet._greenlet.UnswitchableGreenlet */
int gl_py_unswitchable_init(PyObject *module);
enum {
    GL_PY_FAIL_SWITCH = 1,      /* a switch into it raises SystemError */
    GL_PY_FAIL_STACK_SWITCH = 2 /* a switch into it ends the process */
};
/* A switch into `target`, which has forced_failure set: ends the process,
 * or returns -1 with SystemError set. */
int gl_py_forced_failure(PyGreenlet *target);

/* records.c: greenlet._greenlet._records(), _threads() */
/* The suspended greenlets of one thread (its engine serial; 0: of every
 * thread), as new references, in an array to PyMem_RawFree; *count gets
 * their number (0, and maybe NULL, when none or out of memory). */
PyGreenlet **gl_py_suspended_greenlets(uint64_t thread_serial, size_t *count);
PyObject *gl_py_records(PyObject *module, PyObject *unused);
PyObject *gl_py_threads(PyObject *module, PyObject *unused);
PyObject *gl_py_thread_idents(PyObject *module, PyObject *unused);

/* native_view.c: _native_backtrace(g) -> (frames, reached_root),
 * _read_stack(g, address, size) -> bytes */
PyObject *gl_py_native_backtrace(PyObject *module, PyObject *greenlet);
PyObject *gl_py_read_stack(PyObject *module, PyObject *args);
/* hazard_audit.c */
#include "glinspect.h"
/* A hit, and the C frame of its greenlet whose locals it points into. */
typedef struct gl_py_hazard {
    gl_hazard_hit hit;
    gl_native_frame frame;
    int has_frame;
} gl_py_hazard;
/* Runs the audit under the GIL; *hits: gl_py_hazards_free() it. GL_E* on
 * error. */
int gl_py_hazard_audit(gl_py_hazard **hits, size_t *count);
void gl_py_hazards_free(gl_py_hazard *hits, size_t count);
/* The suspended greenlet with that id, borrowed; NULL if none. */
PyGreenlet *gl_py_greenlet_of(uint64_t id);
/* Whether the last audit hit greenlet `id`. Under the GIL. */
int gl_py_hazard_flagged(uint64_t greenlet_id);
PyObject *gl_py_hazard_scan(PyObject *module, PyObject *unused);

/* watches.c: hardware write watchpoints (inspect/hazard_watch.c) */
PyObject *gl_py_watch_add(PyObject *module, PyObject *args);
PyObject *gl_py_watch_clear(PyObject *module, PyObject *unused);
PyObject *gl_py_watch_list(PyObject *module, PyObject *unused);
PyObject *gl_py_watch_writes(PyObject *module, PyObject *unused);
/* Watches the first saved candidate of each holder among `hits`;
 * returns how many were watched, *failure the reason if watching is not
 * available. Under the GIL. */
int gl_py_watch_hits(const gl_py_hazard *hits, size_t count,
                     const char **failure);
/* The function (dynamic or static symbol), offset and object of `ip`. */
void gl_py_name_ip(uintptr_t ip, char *function, size_t size,
                   uintptr_t *offset, const char **object);
/* Adds the capsule greenlet._watch_C_API. 0, or -1 with an exception. */
int gl_py_watch_init(PyObject *module);

/* labels.c: names and spawn sites */
/* Records where `greenlet` is being created, if spawn sites are on. */
void gl_py_record_spawn_site(PyGreenlet *greenlet, PyThreadState *tstate);
/* Drops the name and spawn site (deallocation). */
void gl_py_clear_labels(gl_py_impl *impl);
PyObject *gl_py_set_name(PyObject *module, PyObject *args);
PyObject *gl_py_labels_of(PyObject *module, PyObject *greenlet);
PyObject *gl_py_record_spawn_sites(PyObject *module, PyObject *on);
/* Reads GREENLET_SPAWN_SITES from the environment. */
void gl_py_labels_init(void);

/* monitor_runtime.c: the CPython part of the monitor segment. 0, or -1
 * with an exception set. */
int gl_py_monitor_init(PyObject *module);

/* monitor_client.c: reading other processes' segments */
int gl_py_monitor_client_init(PyObject *module);
PyObject *gl_py_monitor_processes(PyObject *module, PyObject *unused);
PyObject *gl_py_monitor_read(PyObject *module, PyObject *args);
PyObject *gl_py_monitor_request(PyObject *module, PyObject *args);

/* The trace function set by greenlet.settrace, or NULL (borrowed). */
PyObject *gl_py_trace_function(void);
void gl_py_set_trace_function(PyObject *function);

#endif /* GL_PY_BINDING_H */
