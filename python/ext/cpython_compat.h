/*
 * cpython_compat.h -- the one interface to CPython's internals: what a
 * switch must move between the thread state and a greenlet, as a saved-
 * state struct and operations on it, and the other places where the
 * binding must know how a CPython version lays out its frames, thread
 * states and objects. cpython_compat.c holds the code for each supported
 * version (3.10 to 3.13); nothing else in the binding includes internal
 * headers or reads a version-dependent field.
 */
#ifndef GL_PY_CPYTHON_COMPAT_H
#define GL_PY_CPYTHON_COMPAT_H

#include <Python.h>

#include "glengine.h"

/* Whether the interpreter is finalizing (3.13 made the call public). */
#if PY_VERSION_HEX >= 0x030D0000
#define gl_py_is_finalizing() Py_IsFinalizing()
#else
#define gl_py_is_finalizing() _Py_IsFinalizing()
#endif

/* One link of a suspended chain of interpreter frames that was changed
 * so that the chain skips the eval loops' entry frames (3.12+; see
 * gl_py_state_frame), with the value to put back. */
typedef struct gl_py_changed_link {
    void *frame;
    void *original_previous;
} gl_py_changed_link;

/* Per-greenlet interpreter state while the greenlet is not running. Holds
 * strong references to the saved context and handled exception. Which
 * fields a version uses, cpython_compat.c says. */
typedef struct gl_py_saved_state {
    void *c_frame_record;         /* 3.10-3.12: the C frame record (CFrame)
                                     of its innermost eval loop, on its C
                                     stack */
    void *top_frame;              /* 3.10: PyFrameObject *; 3.11+:
                                     _PyInterpreterFrame * */
    PyFrameObject *top_frame_object; /* borrowed, for gr_frame */
    int recursion_depth;          /* Python calls */
    int c_recursion_depth;        /* 3.12+: C calls */
    void *datastack_chunk;        /* 3.11+ */
    PyObject **datastack_top;
    PyObject **datastack_limit;
    PyObject *exc_type;           /* 3.10: strong */
    PyObject *exc_value;          /* strong */
    PyObject *exc_traceback;      /* 3.10: strong */
    void *exc_previous_item;
    void *exc_info;
    PyObject *context;            /* strong */
    int trash_delete_nesting;     /* 3.10-3.12 */
    int started;                  /* the greenlet has run, so its record is real */
    uint64_t thread_state_id;     /* the id of the thread state it last ran
                                     under (gl_py_state_stranded) */
    void *call_top;               /* where the arguments of the switch that
                                     suspended it ended, if a switch() or
                                     throw() called from Python (else NULL):
                                     on its innermost frame's evaluation
                                     stack, whose depth it tells */
    void *call_keywords;          /* that call's keyword names (a tuple,
                                     compared only), or NULL */
    /* 3.12+, from the switch that suspended it until the one that resumes
     * it: the links of its chain of frames that were changed to skip the
     * eval loops' entry frames, and its innermost complete frame, where
     * walks of the chain start (gl_py_prepare_switch). */
    gl_py_changed_link *changed_links;
    int changed_count, changed_capacity;
    void *exposed_top;
} gl_py_saved_state;

/* State moves at a switch, in the order the engine's hooks call them.
 * save: while the outgoing greenlet's stack is fully in place.
 * restore: once the incoming greenlet's bytes are back; a greenlet that
 * never ran gets a fresh state (its first frame has no caller).
 * `tracing` carries the outgoing greenlet's trace flag to the incoming one,
 * since sys.settrace applies to the thread, not to one greenlet. */
void gl_py_state_save(PyThreadState *tstate, gl_py_saved_state *state,
                      int *tracing);
void gl_py_state_restore(PyThreadState *tstate, gl_py_saved_state *state,
                         int tracing);

/* 1 when a suspended greenlet's frames belong to another thread state
 * than `tstate` of the same thread: a foreign thread that calls Python
 * through PyGILState_Ensure/Release gets a new thread state each call, and
 * what was suspended under an earlier one links to its freed memory. Such
 * a greenlet can never run again. */
int gl_py_state_stranded(const gl_py_saved_state *state,
                         const PyThreadState *tstate);

/* Before a switch, outside of it, for the greenlet that will stop (its
 * saved state): on 3.12+ its chain of frames is changed to skip the eval
 * loops' entry frames, which stay on its C stack (see cpython_compat.c),
 * so that everything that walks a suspended chain reads heap frames only.
 * 0, or -1 with MemoryError set (then no switch). gl_py_cancel_switch
 * undoes it when the switch does not happen; restore undoes it when the
 * greenlet resumes. */
int gl_py_prepare_switch(PyThreadState *tstate, gl_py_saved_state *state);
void gl_py_cancel_switch(gl_py_saved_state *state);

/* In a greenlet's first C frame, before its run function: `record` is
 * storage in that frame for the interpreter's per-C-stack record. */
typedef struct gl_py_c_frame_storage {
    void *words[8];
} gl_py_c_frame_storage;
void gl_py_enter_new_greenlet(PyThreadState *tstate,
                              gl_py_c_frame_storage *record);

/* When a greenlet's run function has returned: frees its data stack (the
 * interpreter frames' memory) and forgets the C frame record, which dies
 * with its C frame. */
void gl_py_leave_finished_greenlet(PyThreadState *tstate);

/* A thread starts using greenlets, and ends: what this file keeps per
 * thread. */
void gl_py_thread_begins(PyThreadState *tstate);
void gl_py_thread_ends(PyThreadState *tstate);

/* Code run while the thread state is being cleared (killing greenlets at
 * thread end) may have made a new thread dict after CPython cleared the
 * old one; drop it, or it leaks. */
void gl_py_drop_recreated_thread_dict(PyThreadState *tstate);

/* The running greenlet's context (borrowed, may be NULL), and replacing it
 * (`context` may be NULL; a new reference is taken). */
PyObject *gl_py_running_context(PyThreadState *tstate);
void gl_py_set_running_context(PyThreadState *tstate, PyObject *context);

/* The thread's trash can nesting level (greenlet._greenlet.
 * get_tstate_trash_delete_nesting). */
int gl_py_trash_delete_nesting(PyThreadState *tstate);

/* Around a call of greenlet.settrace's function: the interpreter's own
 * tracing and profiling do not see it. */
void gl_py_enter_tracing(PyThreadState *tstate);
void gl_py_leave_tracing(PyThreadState *tstate);

/* The qualified name of a code object (3.10: its name). Borrowed. */
PyObject *gl_py_code_name(PyCodeObject *code);

/* Visits and clears the strong references of a saved state (GC). */
int gl_py_state_traverse(gl_py_saved_state *state, visitproc visit, void *arg);
void gl_py_state_clear(gl_py_saved_state *state);

/* The frame object of a suspended greenlet's innermost Python frame
 * (borrowed; NULL, without an exception, if it has none; NULL with
 * MemoryError set if one could not be made), whose f_back chain is safe
 * to walk. */
PyObject *gl_py_state_frame(gl_py_saved_state *state);

/* For a suspended greenlet whose thread has exited: visits what its
 * frames hold (the collector then sees cycles through them), and releases
 * it -- their references, frame objects that others hold keep their own
 * copy of their frame, and the memory of the frames. The frames never run
 * again. Values on the evaluation stack of a frame that was in a call are
 * not released (CPython does not record how many there are). */
int gl_py_state_traverse_orphaned(gl_py_saved_state *state, visitproc visit,
                                  void *arg);
void gl_py_state_release_orphaned(gl_py_saved_state *state);

/* Python frames as plain facts, for the monitor (which reads them from
 * its own thread, holding the GIL, so the frames cannot change): visit()
 * gets each complete frame's code object (borrowed) and current line,
 * innermost first, until it returns nonzero. */
typedef int gl_py_frame_visitor(PyCodeObject *code, int line, void *context);
/* The frames of a suspended greenlet (its saved state). */
void gl_py_state_walk_frames(const gl_py_saved_state *state,
                             gl_py_frame_visitor *visit, void *context);
/* The frames that the thread with this native id runs now; nothing if no
 * thread state of the interpreter has that id. */
void gl_py_thread_walk_frames(unsigned long native_id,
                              gl_py_frame_visitor *visit, void *context);
/* The native thread id of a thread state; 0 if unknown. */
unsigned long gl_py_native_thread_id(PyThreadState *tstate);

/* Calls visit(address) for every word of the interpreter and of this
 * binding that points into a C stack and that a switch keeps right: words
 * the hazard audit must not report. Of each thread state (the pointer to
 * its running C frame record, and on 3.12+ its frames' links to their
 * eval loops' entry frames); of a suspended greenlet (its saved state, and
 * on 3.12+ the copies kept of those links while they are cut). Under the
 * GIL. */
typedef void gl_py_holder_visitor(const void *address, void *context);
void gl_py_visit_stack_holders(gl_py_holder_visitor *visit, void *context);
void gl_py_state_visit_stack_holders(const gl_py_saved_state *state,
                                     gl_py_holder_visitor *visit,
                                     void *context);

/* Calls visit(start, size) for each block of memory that holds the
 * interpreter's frames (3.11+: the data-stack chunks of every thread
 * state, of a suspended greenlet, and the spare ones kept for new
 * greenlets; 3.10's frames are objects): whatever they hold, live frames
 * or the stale words of frames that have returned (their links to entry
 * frames on C stacks, 3.12+), is the interpreter's, never a pointer that
 * an extension keeps. The hazard audit leaves them out. Under the GIL. */
typedef void gl_py_region_visitor(const void *start, size_t size,
                                  void *context);
void gl_py_visit_frame_memory(gl_py_region_visitor *visit, void *context);
void gl_py_state_visit_frame_memory(const gl_py_saved_state *state,
                                    gl_py_region_visitor *visit,
                                    void *context);

/* Deallocation of an object whose count has reached 0 (tp_dealloc):
 * resurrect makes it alive again, with a count of 1, for code that must
 * run on it; unresurrect undoes that, and returns 1 when that code left
 * references to it (the object lives on, tracked by the collector again)
 * or 0 when the deallocation goes on. */
void gl_py_resurrect(PyObject *object);
int gl_py_unresurrect(PyObject *object);

#endif /* GL_PY_CPYTHON_COMPAT_H */
