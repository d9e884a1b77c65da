/*
 * cpython_compat.c -- what a switch moves between CPython's thread state
 * and a greenlet, per CPython version. This is the only file of the
 * binding that reads CPython internals; to support a version, add its case
 * here. Supported now: 3.11.
 *
 * Why each field moves (3.11):
 * - cframe: the interpreter's per-C-stack record lives in the C frames of
 *   the greenlet's own eval loops; each loop links its record to the
 *   previous one and returns to it.
 * - cframe->use_tracing: stored per record, so the outgoing greenlet's flag
 *   is copied into the incoming one's record, or sys.settrace made in one
 *   greenlet would be ignored in the others.
 * - recursion depth: per greenlet; kept as a depth and rebuilt from the
 *   current limit, because sys.setrecursionlimit rewrites live threads only.
 * - datastack_*: each greenlet's interpreter frames live in its own chain of
 *   data-stack chunks.
 * - exc_state / exc_info: sys.exc_info() is per greenlet. The contents of
 *   tstate->exc_state move by value and its address stays, since chains of
 *   handled exceptions end there.
 * - context, context_ver: contextvars are per greenlet; the version must
 *   change at each switch, because ContextVar lookups cache on it.
 * - trash_delete_nesting: nests like the C stack but lives in the thread
 *   state (a switch inside deferred deallocation corrupted it: greenlet
 *   PR 318).
 */
#include "cpython_compat.h"

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000
/* 3.11: pycore_frame.h compiles without Py_BUILD_CORE. */
#include <internal/pycore_frame.h>
#else
#error "greenlet: this CPython version is not supported yet (3.11 is); add its case to python/ext/cpython_compat.c"
#endif

_Static_assert(sizeof(_PyCFrame) <= sizeof(gl_py_c_frame_storage),
               "gl_py_c_frame_storage must hold a _PyCFrame");

/* Root chunks of finished greenlets, kept for the next greenlets of the
 * thread: a new chunk costs an mmap and a munmap (about 4 us), the bulk of
 * creating and finishing a greenlet otherwise. An empty root chunk is what
 * the interpreter itself leaves after popping its last frame, so a new
 * greenlet can start on one. */
#define SPARE_CHUNKS 8
static __thread struct {
    _PyStackChunk *chunks[SPARE_CHUNKS];
    int count;
} spare_chunks;

/* Chunks come from the object arena allocator (_PyObject_VirtualAlloc,
 * which is not exported); they are freed through it, with their size. */
static void free_chunk(_PyStackChunk *chunk)
{
    PyObjectArenaAllocator arena;
    PyObject_GetArenaAllocator(&arena);
    arena.free(arena.ctx, chunk, chunk->size);
}

static void give_spare_chunk(PyThreadState *tstate)
{
    if (spare_chunks.count == 0)
        return;
    _PyStackChunk *chunk = spare_chunks.chunks[--spare_chunks.count];
    tstate->datastack_chunk = chunk;
    /* Slot 0 of a root chunk stays unused: the interpreter pops a chunk
     * when a frame at its slot 0 returns, and a root chunk must stay. */
    tstate->datastack_top = &chunk->data[1];
    tstate->datastack_limit = (PyObject **)((char *)chunk + chunk->size);
}

void gl_py_prepare_switch(PyThreadState *tstate)
{
    _PyInterpreterFrame *frame = tstate->cframe->current_frame;
    if (!frame || frame->frame_obj)
        return;
    int was_enabled = PyGC_Disable();
    PyFrameObject *object = PyThreadState_GetFrame(tstate);
    Py_XDECREF(object); /* the interpreter frame keeps it */
    if (was_enabled)
        PyGC_Enable();
}

void gl_py_state_save(PyThreadState *tstate, gl_py_saved_state *state,
                      int *tracing)
{
    _PyCFrame *cframe = tstate->cframe;
    _PyInterpreterFrame *frame = cframe->current_frame;
    state->c_frame_record = cframe;
    state->top_frame = frame;
    state->top_frame_object = frame ? frame->frame_obj : NULL;
    *tracing = cframe->use_tracing;
    state->recursion_depth =
        tstate->recursion_limit - tstate->recursion_remaining;
    state->datastack_chunk = tstate->datastack_chunk;
    state->datastack_top = tstate->datastack_top;
    state->datastack_limit = tstate->datastack_limit;
    state->exc_value = tstate->exc_state.exc_value; /* the reference moves */
    state->exc_previous_item = tstate->exc_state.previous_item;
    state->exc_info = tstate->exc_info;
    tstate->exc_state.exc_value = NULL;
    state->context = tstate->context; /* the reference moves */
    tstate->context = NULL;
    state->trash_delete_nesting = tstate->trash_delete_nesting;
}

void gl_py_state_restore(PyThreadState *tstate, gl_py_saved_state *state,
                         int tracing)
{
    if (!state->started) {
        /* First run: no frames yet; recursion goes on from the starter's
         * depth, since the C stack continues below the starter's. */
        state->started = 1;
        tstate->cframe = &tstate->root_cframe;
        /* The new greenlet's record is copied from this one: give it the
         * thread's trace flag, or starting a greenlet turns tracing off. */
        tstate->root_cframe.use_tracing = (uint8_t)tracing;
        tstate->datastack_chunk = NULL;
        tstate->datastack_top = NULL;
        tstate->datastack_limit = NULL;
        give_spare_chunk(tstate);
        tstate->exc_state.exc_value = NULL;
        tstate->exc_state.previous_item = NULL;
        tstate->exc_info = &tstate->exc_state;
        tstate->context = state->context; /* gr_context, if it was set */
        state->context = NULL;
        tstate->context_ver++;
        tstate->trash_delete_nesting = 0;
        state->top_frame_object = NULL;
        return;
    }
    _PyCFrame *cframe = state->c_frame_record;
    cframe->use_tracing = (uint8_t)tracing;
    cframe->current_frame = state->top_frame;
    tstate->cframe = cframe;
    tstate->recursion_remaining =
        tstate->recursion_limit - state->recursion_depth;
    tstate->datastack_chunk = state->datastack_chunk;
    tstate->datastack_top = state->datastack_top;
    tstate->datastack_limit = state->datastack_limit;
    tstate->exc_state.exc_value = state->exc_value;
    tstate->exc_state.previous_item = state->exc_previous_item;
    tstate->exc_info = state->exc_info;
    state->exc_value = NULL;
    tstate->context = state->context;
    tstate->context_ver++;
    state->context = NULL;
    tstate->trash_delete_nesting = state->trash_delete_nesting;
    state->top_frame_object = NULL;
}

void gl_py_enter_new_greenlet(PyThreadState *tstate,
                              gl_py_c_frame_storage *storage)
{
    _PyCFrame *record = (_PyCFrame *)storage;
    *record = *tstate->cframe; /* keeps the trace flag */
    record->current_frame = NULL;
    record->previous = &tstate->root_cframe;
    tstate->cframe = record;
}

void gl_py_leave_finished_greenlet(PyThreadState *tstate)
{
    _PyStackChunk *chunk = tstate->datastack_chunk;
    while (chunk) {
        _PyStackChunk *previous = chunk->previous;
        if (!previous && spare_chunks.count < SPARE_CHUNKS) {
            chunk->top = 0;
            spare_chunks.chunks[spare_chunks.count++] = chunk;
        } else {
            free_chunk(chunk);
        }
        chunk = previous;
    }
    tstate->datastack_chunk = NULL;
    tstate->datastack_top = NULL;
    tstate->datastack_limit = NULL;
    tstate->cframe = &tstate->root_cframe; /* ours dies with our C frame */
}

void gl_py_thread_ends(PyThreadState *tstate)
{
    (void)tstate;
    while (spare_chunks.count > 0)
        free_chunk(spare_chunks.chunks[--spare_chunks.count]);
}

void gl_py_drop_recreated_thread_dict(PyThreadState *tstate)
{
    Py_CLEAR(tstate->dict);
}

PyObject *gl_py_running_context(PyThreadState *tstate)
{
    return tstate->context;
}

void gl_py_set_running_context(PyThreadState *tstate, PyObject *context)
{
    Py_XINCREF(context);
    Py_XSETREF(tstate->context, context);
    tstate->context_ver++; /* ContextVar caches key on it */
}

/* 3.11 traverses no interpreter frame that a thread owns: a suspended
 * greenlet's frames would be invisible roots, and a cycle through them
 * (a local that refers back to the greenlet) would never be collected. So
 * the greenlet visits them as its own: the references each frame owns, and
 * its fast locals. The value stack of a frame that is executing a call is
 * not visited: its depth is not recorded (stacktop is -1), so those
 * references count as outside ones, which can only keep objects alive.
 * Frames owned by generators or frame objects are theirs to visit. */
int gl_py_state_traverse_frames(gl_py_saved_state *state, visitproc visit,
                                void *arg)
{
    for (_PyInterpreterFrame *frame = state->top_frame; frame;
         frame = frame->previous) {
        if (frame->owner != FRAME_OWNED_BY_THREAD)
            continue;
        Py_VISIT(frame->frame_obj);
        Py_VISIT(frame->f_locals);
        Py_VISIT(frame->f_func);
        Py_VISIT(frame->f_code);
        for (int i = 0; i < frame->f_code->co_nlocalsplus; i++)
            Py_VISIT(frame->localsplus[i]);
    }
    return 0;
}

int gl_py_state_traverse(gl_py_saved_state *state, visitproc visit, void *arg)
{
    Py_VISIT(state->exc_value);
    Py_VISIT(state->context);
    return 0;
}

void gl_py_state_clear(gl_py_saved_state *state)
{
    Py_CLEAR(state->exc_value);
    Py_CLEAR(state->context);
}

static void walk_frames(_PyInterpreterFrame *frame, gl_py_frame_visitor *visit,
                        void *context)
{
    for (; frame; frame = frame->previous) {
        if (_PyFrame_IsIncomplete(frame))
            continue; /* not started: no line yet, and not shown by Python */
        int line = PyCode_Addr2Line(
            frame->f_code,
            _PyInterpreterFrame_LASTI(frame) * (int)sizeof(_Py_CODEUNIT));
        if (visit(frame->f_code, line, context))
            return;
    }
}

void gl_py_state_walk_frames(const gl_py_saved_state *state,
                             gl_py_frame_visitor *visit, void *context)
{
    walk_frames(state->top_frame, visit, context);
}

void gl_py_thread_walk_frames(unsigned long native_id,
                              gl_py_frame_visitor *visit, void *context)
{
    PyInterpreterState *interpreter = PyInterpreterState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(interpreter); t;
         t = PyThreadState_Next(t)) {
        if (t->native_thread_id == native_id) {
            walk_frames(t->cframe->current_frame, visit, context);
            return;
        }
    }
}

void gl_py_visit_stack_holders(gl_py_holder_visitor *visit, void *context)
{
    PyInterpreterState *interpreter = PyInterpreterState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(interpreter); t;
         t = PyThreadState_Next(t))
        visit(&t->cframe, context);
}
