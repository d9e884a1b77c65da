/*
 * cpython_compat.h -- the one interface to CPython's internals: what a
 * switch must move between the thread state and a greenlet, as an opaque
 * saved-state struct and five operations on it. cpython_compat.c holds the
 * code for each supported CPython version (see ../../../shared notes in
 * docs/python.md); nothing else in the binding includes internal headers.
 */
#ifndef GL_PY_CPYTHON_COMPAT_H
#define GL_PY_CPYTHON_COMPAT_H

#include <Python.h>

/* Per-greenlet interpreter state while the greenlet is not running. Holds
 * strong references to the saved context and handled exception. */
typedef struct gl_py_saved_state {
    void *c_frame_record;         /* 3.11: _PyCFrame *, on its C stack */
    void *top_frame;              /* 3.11: _PyInterpreterFrame * */
    PyFrameObject *top_frame_object; /* borrowed, for gr_frame */
    int recursion_depth;
    void *datastack_chunk;
    PyObject **datastack_top;
    PyObject **datastack_limit;
    PyObject *exc_value;          /* strong */
    void *exc_previous_item;
    void *exc_info;
    PyObject *context;            /* strong */
    int trash_delete_nesting;
    int started;                  /* the greenlet has run, so its record is real */
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

/* Before a switch, outside of it: make sure the running frame has a frame
 * object (allocating one may run the garbage collector, which must not
 * happen inside the switch), so that gr_frame of a suspended greenlet is
 * available without allocating. */
void gl_py_prepare_switch(PyThreadState *tstate);

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

/* The calling thread is ending: free what this file keeps per thread. */
void gl_py_thread_ends(PyThreadState *tstate);

/* Code run while the thread state is being cleared (killing greenlets at
 * thread end) may have made a new thread dict after CPython cleared the
 * old one; drop it, or it leaks. */
void gl_py_drop_recreated_thread_dict(PyThreadState *tstate);

/* The running greenlet's context (borrowed, may be NULL), and replacing it
 * (`context` may be NULL; a new reference is taken). */
PyObject *gl_py_running_context(PyThreadState *tstate);
void gl_py_set_running_context(PyThreadState *tstate, PyObject *context);

/* Visits the references held by the frames of a suspended greenlet
 * (not of a main greenlet: the thread's own frames are roots). */
int gl_py_state_traverse_frames(gl_py_saved_state *state, visitproc visit,
                                void *arg);

/* Visits and clears the strong references of a saved state (GC). */
int gl_py_state_traverse(gl_py_saved_state *state, visitproc visit, void *arg);
void gl_py_state_clear(gl_py_saved_state *state);

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

/* Calls visit(address) for every word of the interpreter that points into
 * a C stack and that a switch keeps right (each thread state's pointer to
 * its running C frame record): words the hazard audit must not report.
 * Under the GIL. */
typedef void gl_py_holder_visitor(const void *address, void *context);
void gl_py_visit_stack_holders(gl_py_holder_visitor *visit, void *context);

#endif /* GL_PY_CPYTHON_COMPAT_H */
