/*
 * cpython_compat.c -- what a switch moves between CPython's thread state
 * and a greenlet, and everything else the binding must know of a CPython
 * version's frames, thread states and objects. The only file of the
 * binding that reads CPython internals; to support a version, add its
 * cases here. Supported: 3.10, 3.11, 3.12, 3.13 (default builds).
 *
 * Why each field moves (the version that has it):
 * - top frame: each greenlet has its own call chain. 3.10: tstate->frame,
 *   a frame object; 3.11, 3.12: cframe->current_frame; 3.13: current_frame,
 *   both interpreter frames.
 * - cframe (3.10-3.12): the interpreter's per-C-stack record lives in the
 *   C frames of the greenlet's own eval loops; each loop links its record
 *   to the previous one and returns to it.
 * - cframe->use_tracing (3.10, 3.11): stored per record, so the outgoing
 *   greenlet's flag is copied into the incoming one's record, or
 *   sys.settrace made in one greenlet would be ignored in the others.
 * - recursion depths: per greenlet; kept as depths and rebuilt from the
 *   current limit, because sys.setrecursionlimit rewrites live threads
 *   only. 3.12+ count Python and C calls apart.
 * - datastack_* (3.11+): each greenlet's interpreter frames live in its
 *   own chain of data-stack chunks.
 * - exc_state / exc_info: sys.exc_info() is per greenlet. The contents of
 *   tstate->exc_state move by value and its address stays, since chains of
 *   handled exceptions end there (3.10: type, value and traceback).
 * - context, context_ver: contextvars are per greenlet; the version must
 *   change at each switch, because ContextVar lookups cache on it.
 * - trash can nesting (3.10-3.12): nests like the C stack but lives in the
 *   thread state (a switch inside deferred deallocation corrupted it:
 *   greenlet PR 318). 3.13 has no counter: its trash can keys off the C
 *   recursion depth, which moves already; its list of objects waiting for
 *   deallocation (delete_later) is the thread's and stays.
 *
 * Entry frames (3.12+): each call of the eval loop keeps an interpreter
 * frame of its own (owner FRAME_OWNED_BY_CSTACK) in a C local and links
 * its first frame's `previous` to it. A suspended greenlet's chain of
 * frames therefore passes through its C stack, whose bytes may be on the
 * heap or taken by another greenlet: such frames are read through the
 * greenlet's view of its stack (glinspect.h), and for gr_frame the chain
 * is changed to skip them, its links put back before the greenlet runs
 * (greenlet PR 393 fixed the same crash upstream).
 */
#include "cpython_compat.h"
#include "glinspect.h"

#include <string.h>
#include <time.h>

#if PY_VERSION_HEX >= 0x030E0000 || PY_VERSION_HEX < 0x030A0000
#error "greenlet: this CPython version is not supported (3.10 to 3.13 are); add its case to python/ext/cpython_compat.c"
#endif
#ifdef Py_GIL_DISABLED
#error "greenlet: free-threaded CPython builds are not supported"
#endif

#if PY_VERSION_HEX >= 0x030D0000
#define GL_PY 313
#elif PY_VERSION_HEX >= 0x030C0000
#define GL_PY 312
#elif PY_VERSION_HEX >= 0x030B0000
#define GL_PY 311
#else
#define GL_PY 310
#endif

#if GL_PY == 310
#include <frameobject.h>
#else
/* pycore_frame.h compiles without Py_BUILD_CORE on 3.11 and 3.12 and
 * refuses to on 3.13; defined here, after Python.h, it changes nothing
 * else. */
#if GL_PY >= 313
#define Py_BUILD_CORE 1
#endif
#include <internal/pycore_frame.h>
#endif

/* ------------------------------------------------ fields, per version */

#if GL_PY >= 311
typedef _PyInterpreterFrame frame_t;
#if GL_PY >= 313
#define CURRENT_FRAME(tstate) ((tstate)->current_frame)
#define CODE_OF(frame) ((PyCodeObject *)(frame)->f_executable)
#define INSTRUCTION_OF(frame) ((frame)->instr_ptr)
#else
#define CURRENT_FRAME(tstate) ((tstate)->cframe->current_frame)
#define CODE_OF(frame) ((frame)->f_code)
#define INSTRUCTION_OF(frame) ((frame)->prev_instr)
#endif
#if GL_PY >= 312
#define FUNCTION_OF(frame) ((frame)->f_funcobj)
#else
#define FUNCTION_OF(frame) ((frame)->f_func)
#endif
#if GL_PY >= 313
#define CODE_FIELD f_executable
#else
#define CODE_FIELD f_code
#endif
#endif /* GL_PY >= 311 */

#if GL_PY == 312
#define C_RECURSION_LIMIT_OF C_RECURSION_LIMIT
#elif GL_PY == 313
#define C_RECURSION_LIMIT_OF Py_C_RECURSION_LIMIT
#endif

#if GL_PY <= 312
_Static_assert(sizeof(*((PyThreadState *)0)->cframe) <=
                   sizeof(gl_py_c_frame_storage),
               "gl_py_c_frame_storage must hold a C frame record");
#endif

/* ------------------------------------------------------- data stacks */

#if GL_PY >= 311
/* Root chunks of finished greenlets, kept for the next new greenlets: a
 * new chunk costs an mmap and a munmap (about 4 us), the bulk of creating
 * and finishing a greenlet otherwise. An empty root chunk is what the
 * interpreter itself leaves after popping its last frame, so a new
 * greenlet can start on one. One list for all threads, under the GIL, so
 * that the hazard audit can leave them out (gl_py_visit_frame_memory). */
#define SPARE_CHUNKS 8
static struct {
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

static void free_chunk_chain(_PyStackChunk *chunk)
{
    while (chunk) {
        _PyStackChunk *previous = chunk->previous;
        free_chunk(chunk);
        chunk = previous;
    }
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
#endif /* GL_PY >= 311 */

/* ------------------------------------------------------------ the switch */

static void unexpose_frames(gl_py_saved_state *state);

void gl_py_state_save(PyThreadState *tstate, gl_py_saved_state *state,
                      int *tracing)
{
#if GL_PY == 310
    state->c_frame_record = tstate->cframe;
    state->top_frame = tstate->frame;
    state->top_frame_object = tstate->frame;
    *tracing = tstate->cframe->use_tracing;
    state->recursion_depth = tstate->recursion_depth;
    state->exc_type = tstate->exc_state.exc_type; /* the references move */
    state->exc_traceback = tstate->exc_state.exc_traceback;
    tstate->exc_state.exc_type = NULL;
    tstate->exc_state.exc_traceback = NULL;
#else
#if GL_PY <= 312
    state->c_frame_record = tstate->cframe;
#endif
#if GL_PY == 311
    *tracing = tstate->cframe->use_tracing;
    state->recursion_depth =
        tstate->recursion_limit - tstate->recursion_remaining;
#else
    *tracing = 0;
    state->recursion_depth =
        tstate->py_recursion_limit - tstate->py_recursion_remaining;
    state->c_recursion_depth =
        C_RECURSION_LIMIT_OF - tstate->c_recursion_remaining;
#endif
    state->top_frame = CURRENT_FRAME(tstate);
    state->datastack_chunk = tstate->datastack_chunk;
    state->datastack_top = tstate->datastack_top;
    state->datastack_limit = tstate->datastack_limit;
#endif
    state->exc_value = tstate->exc_state.exc_value; /* the reference moves */
    state->exc_previous_item = tstate->exc_state.previous_item;
    /* NULL for the thread state's own item: a thread may get a new thread
     * state (PyGILState_Ensure/Release from a C thread), and the old one's
     * address would dangle. */
    state->exc_info = tstate->exc_info == &tstate->exc_state ? NULL
                                                             : tstate->exc_info;
    tstate->exc_state.exc_value = NULL;
    state->context = tstate->context; /* the reference moves */
    tstate->context = NULL;
    state->thread_state_id = tstate->id;
#if GL_PY <= 311
    state->trash_delete_nesting = tstate->trash_delete_nesting;
#elif GL_PY == 312
    state->trash_delete_nesting = tstate->trash.delete_nesting;
#endif
}

int gl_py_state_stranded(const gl_py_saved_state *state,
                         const PyThreadState *tstate)
{
    return state->started && state->thread_state_id != tstate->id;
}

/* A greenlet's first switch-in: no frames yet; recursion goes on from the
 * starter's depth, since the C stack continues below the starter's. */
static void start_fresh(PyThreadState *tstate, gl_py_saved_state *state,
                        int tracing)
{
    state->started = 1;
#if GL_PY <= 312
    tstate->cframe = &tstate->root_cframe;
#endif
#if GL_PY <= 311
    /* The new greenlet's record is copied from this one: give it the
     * thread's trace flag, or starting a greenlet turns tracing off. */
    tstate->root_cframe.use_tracing = (uint8_t)tracing;
#else
    (void)tracing;
#endif
#if GL_PY == 310
    tstate->frame = NULL;
    tstate->exc_state.exc_type = NULL;
    tstate->exc_state.exc_traceback = NULL;
#else
#if GL_PY >= 313
    tstate->current_frame = NULL;
#endif
    tstate->datastack_chunk = NULL;
    tstate->datastack_top = NULL;
    tstate->datastack_limit = NULL;
    give_spare_chunk(tstate);
#endif
    tstate->exc_state.exc_value = NULL;
    tstate->exc_state.previous_item = NULL;
    tstate->exc_info = &tstate->exc_state;
    tstate->context = state->context; /* gr_context, if it was set */
    state->context = NULL;
    tstate->context_ver++;
#if GL_PY <= 311
    tstate->trash_delete_nesting = 0;
#elif GL_PY == 312
    tstate->trash.delete_nesting = 0;
#endif
    state->top_frame_object = NULL;
}

void gl_py_state_restore(PyThreadState *tstate, gl_py_saved_state *state,
                         int tracing)
{
    if (!state->started) {
        start_fresh(tstate, state, tracing);
        return;
    }
#if GL_PY == 310
    CFrame *cframe = state->c_frame_record;
    cframe->use_tracing = tracing;
    tstate->cframe = cframe;
    tstate->frame = state->top_frame;
    tstate->recursion_depth = state->recursion_depth;
    tstate->exc_state.exc_type = state->exc_type;
    tstate->exc_state.exc_traceback = state->exc_traceback;
    state->exc_type = NULL;
    state->exc_traceback = NULL;
#else
    unexpose_frames(state); /* before any eval loop resumes */
#if GL_PY <= 312
    _PyCFrame *cframe = state->c_frame_record;
#if GL_PY == 311
    cframe->use_tracing = (uint8_t)tracing;
#else
    (void)tracing;
#endif
    cframe->current_frame = state->top_frame;
    tstate->cframe = cframe;
#else
    (void)tracing;
    tstate->current_frame = state->top_frame;
#endif
#if GL_PY == 311
    tstate->recursion_remaining =
        tstate->recursion_limit - state->recursion_depth;
#else
    tstate->py_recursion_remaining =
        tstate->py_recursion_limit - state->recursion_depth;
    tstate->c_recursion_remaining =
        C_RECURSION_LIMIT_OF - state->c_recursion_depth;
#endif
    tstate->datastack_chunk = state->datastack_chunk;
    tstate->datastack_top = state->datastack_top;
    tstate->datastack_limit = state->datastack_limit;
#endif
    tstate->exc_state.exc_value = state->exc_value;
    tstate->exc_state.previous_item = state->exc_previous_item;
    tstate->exc_info = state->exc_info ? state->exc_info : &tstate->exc_state;
    state->exc_value = NULL;
    tstate->context = state->context;
    tstate->context_ver++;
    state->context = NULL;
#if GL_PY <= 311
    tstate->trash_delete_nesting = state->trash_delete_nesting;
#elif GL_PY == 312
    tstate->trash.delete_nesting = state->trash_delete_nesting;
#endif
    state->top_frame_object = NULL;
}

void gl_py_enter_new_greenlet(PyThreadState *tstate,
                              gl_py_c_frame_storage *storage)
{
#if GL_PY == 310
    CFrame *record = (CFrame *)storage;
    *record = *tstate->cframe; /* keeps the trace flag */
    record->previous = &tstate->root_cframe;
    tstate->cframe = record;
#elif GL_PY <= 312
    _PyCFrame *record = (_PyCFrame *)storage;
    *record = *tstate->cframe; /* keeps the trace flag (3.11) */
    record->current_frame = NULL;
    record->previous = &tstate->root_cframe;
    tstate->cframe = record;
#else
    (void)tstate; /* 3.13 keeps no per-C-stack record */
    (void)storage;
#endif
}

void gl_py_leave_finished_greenlet(PyThreadState *tstate)
{
#if GL_PY >= 311
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
#endif
#if GL_PY <= 311
    /* The switch to the parent reads the trace flag from the record the
     * thread state names: the one that dies with our C frame has it. */
    tstate->root_cframe.use_tracing = tstate->cframe->use_tracing;
#endif
#if GL_PY <= 312
    tstate->cframe = &tstate->root_cframe; /* ours dies with our C frame */
#endif
}

/* ------------------------------------------------------------- threads */

#if GL_PY == 310
/* 3.10's thread states do not know their native id: the threads that use
 * greenlets are noted here, under the GIL. */
static struct native_ids {
    PyThreadState **states;
    unsigned long *ids;
    size_t count, capacity;
} native_ids;

static void forget_native_id(PyThreadState *tstate)
{
    for (size_t i = 0; i < native_ids.count; i++)
        if (native_ids.states[i] == tstate) {
            native_ids.count--;
            native_ids.states[i] = native_ids.states[native_ids.count];
            native_ids.ids[i] = native_ids.ids[native_ids.count];
            return;
        }
}
#endif

void gl_py_thread_begins(PyThreadState *tstate)
{
#if GL_PY == 310
    forget_native_id(tstate);
    if (native_ids.count == native_ids.capacity) {
        size_t capacity = native_ids.capacity ? 2 * native_ids.capacity : 8;
        PyThreadState **states =
            PyMem_RawRealloc(native_ids.states, capacity * sizeof *states);
        if (states)
            native_ids.states = states;
        unsigned long *ids =
            PyMem_RawRealloc(native_ids.ids, capacity * sizeof *ids);
        if (ids)
            native_ids.ids = ids;
        if (!states || !ids)
            return; /* its frames go unseen by the monitor */
        native_ids.capacity = capacity;
    }
    native_ids.states[native_ids.count] = tstate;
    native_ids.ids[native_ids.count++] = PyThread_get_thread_native_id();
#else
    (void)tstate;
#endif
}

unsigned long gl_py_native_thread_id(PyThreadState *tstate)
{
#if GL_PY == 310
    for (size_t i = 0; i < native_ids.count; i++)
        if (native_ids.states[i] == tstate)
            return native_ids.ids[i];
    return 0;
#else
    return tstate->native_thread_id;
#endif
}

void gl_py_thread_ends(PyThreadState *tstate)
{
#if GL_PY == 310
    forget_native_id(tstate);
#else
    (void)tstate;
#endif
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

int gl_py_trash_delete_nesting(PyThreadState *tstate)
{
#if GL_PY <= 311
    return tstate->trash_delete_nesting;
#elif GL_PY == 312
    return tstate->trash.delete_nesting;
#else
    /* No counter: 1 while objects wait for deferred deallocation. */
    return tstate->delete_later != NULL;
#endif
}

void gl_py_enter_tracing(PyThreadState *tstate)
{
#if GL_PY == 310
    tstate->tracing++;
    tstate->cframe->use_tracing = 0;
#else
    PyThreadState_EnterTracing(tstate);
#endif
}

void gl_py_leave_tracing(PyThreadState *tstate)
{
#if GL_PY == 310
    tstate->tracing--;
    tstate->cframe->use_tracing =
        tstate->c_tracefunc != NULL || tstate->c_profilefunc != NULL;
#else
    PyThreadState_LeaveTracing(tstate);
#endif
}

PyObject *gl_py_code_name(PyCodeObject *code)
{
#if GL_PY == 310
    return code->co_name;
#else
    return code->co_qualname;
#endif
}

/* ------------------------------------------------------------------ GC */

int gl_py_state_traverse(gl_py_saved_state *state, visitproc visit, void *arg)
{
    Py_VISIT(state->exc_type);
    Py_VISIT(state->exc_value);
    Py_VISIT(state->exc_traceback);
    Py_VISIT(state->context);
    return 0;
}

/* Frees the array of changed links, zeroed: it held stack addresses,
 * which the hazard audit would find in reused memory. */
static void free_changed_links(gl_py_saved_state *state)
{
    if (state->changed_links)
        explicit_bzero(state->changed_links,
                       state->changed_capacity * sizeof *state->changed_links);
    PyMem_RawFree(state->changed_links);
    state->changed_links = NULL;
    state->changed_count = state->changed_capacity = 0;
}

void gl_py_state_clear(gl_py_saved_state *state)
{
    Py_CLEAR(state->exc_type);
    Py_CLEAR(state->exc_value);
    Py_CLEAR(state->exc_traceback);
    Py_CLEAR(state->context);
    free_changed_links(state);
}

/* ----------------------------------------------------- frames, 3.11+ */

#if GL_PY >= 311
/* Whether the frame has started running its code: frames that have not,
 * and 3.12+ entry frames, are not shown by Python. The frame must be
 * readable in place: in the heap, or on a live stack. */
static int frame_is_complete(const frame_t *frame)
{
#if GL_PY >= 312
    if (frame->owner == FRAME_OWNED_BY_CSTACK)
        return 0;
#endif
    if (frame->owner == FRAME_OWNED_BY_GENERATOR)
        return 1;
    PyCodeObject *code = CODE_OF(frame);
    return INSTRUCTION_OF(frame) >=
           _PyCode_CODE(code) + code->_co_firsttraceable;
}

/* Where walks of a suspended greenlet's frames start: its innermost
 * complete frame, whose chain lies in the heap (3.12+: its links to entry
 * frames were cut when it stopped, see gl_py_prepare_switch). */
static frame_t *suspended_chain(const gl_py_saved_state *state)
{
#if GL_PY >= 312
    return state->exposed_top;
#else
    return state->top_frame;
#endif
}

/* Calls each(frame, context) for the frames of a chain, innermost first,
 * until it returns nonzero (which is returned). In place: for chains that
 * do not pass through a C stack that may have been reused -- a running
 * thread's, or a suspended greenlet's from suspended_chain(). */
typedef int frame_action(frame_t *frame, void *context);
static int for_each_frame(frame_t *frame, frame_action *each, void *context)
{
    for (; frame; frame = frame->previous) {
        int outcome = each(frame, context);
        if (outcome)
            return outcome;
    }
    return 0;
}

/* Gives `frame` (complete, in the heap) its frame object, as the
 * interpreter would: _PyFrame_MakeAndSetFrameObject is not exported, but
 * PyFrame_GetBack of a stand-in frame whose caller is `frame` calls it.
 * Allocates: the collector is kept off meanwhile. 0, or -1 (no memory). */
static int make_frame_object(frame_t *frame)
{
    if (frame->frame_obj)
        return 0;
    PyFrameObject stand_in;
    frame_t stand_in_frame;
    memset(&stand_in, 0, sizeof stand_in);
    memset(&stand_in_frame, 0, sizeof stand_in_frame);
    stand_in.f_frame = &stand_in_frame;
    stand_in_frame.owner = FRAME_OWNED_BY_GENERATOR; /* complete, no code */
    stand_in_frame.previous = frame;
    int was_enabled = PyGC_Disable();
    PyFrameObject *made = PyFrame_GetBack(&stand_in);
    if (was_enabled)
        PyGC_Enable();
    if (!made)
        return -1;
    Py_DECREF(made); /* the frame keeps it */
    return 0;
}
#endif /* GL_PY >= 311 */

/* ------------------------------------------- cutting entry frames, 3.12+ */

#if GL_PY >= 312
/* Makes `frame->previous` `previous`, noting the value to put back.
 * Raw memory only. 0, or -1 (no memory). */
static int change_link(gl_py_saved_state *state, frame_t *frame,
                       frame_t *previous)
{
    if (state->changed_count == state->changed_capacity) {
        int capacity = state->changed_capacity ? 2 * state->changed_capacity : 8;
        gl_py_changed_link *grown =
            PyMem_RawMalloc((size_t)capacity * sizeof *grown);
        if (!grown)
            return -1;
        if (state->changed_count)
            memcpy(grown, state->changed_links,
                   (size_t)state->changed_count * sizeof *grown);
        int count = state->changed_count;
        free_changed_links(state);
        state->changed_links = grown;
        state->changed_count = count;
        state->changed_capacity = capacity;
    }
    gl_py_changed_link *link = &state->changed_links[state->changed_count++];
    link->frame = frame;
    link->original_previous = frame->previous;
    frame->previous = previous;
    return 0;
}
#endif

/* Puts the chain's links back: in the switch that resumes the greenlet,
 * before any of its eval loops runs (returning loops need their entry
 * frames), or when the switch is given up. Pointer stores only. */
static void unexpose_frames(gl_py_saved_state *state)
{
#if GL_PY >= 312
    for (int i = state->changed_count - 1; i >= 0; i--) {
        gl_py_changed_link *link = &state->changed_links[i];
        ((frame_t *)link->frame)->previous = link->original_previous;
    }
    if (state->changed_count)
        explicit_bzero(state->changed_links, (size_t)state->changed_count *
                                                 sizeof *state->changed_links);
    state->changed_count = 0;
    state->exposed_top = NULL;
#else
    (void)state;
#endif
}

int gl_py_prepare_switch(PyThreadState *tstate, gl_py_saved_state *state)
{
#if GL_PY >= 312
    /* Each eval loop keeps an entry frame on the C stack and links the
     * first frame it runs to it: while the greenlet is suspended those
     * bytes may be on the heap and the addresses another greenlet's. So
     * each complete frame of the chain is linked to the next complete
     * one, skipping them, and everything that walks a suspended chain --
     * frame objects' f_back (gi_frame, tracebacks, gr_frame), the monitor,
     * the collector, the release of an orphan -- reads heap frames only.
     * The stack is live here, the greenlet still runs: read in place. */
    unexpose_frames(state); /* nothing should be left; to be sure */
    frame_t *last = NULL;
    for (frame_t *frame = CURRENT_FRAME(tstate); frame;) {
        frame_t *next = frame->previous;
        if (frame_is_complete(frame)) {
            if (!last)
                state->exposed_top = frame;
            else if (last->previous != frame &&
                     change_link(state, last, frame) < 0)
                goto no_memory;
            last = frame;
        }
        frame = next;
    }
    if (last && last->previous && change_link(state, last, NULL) < 0)
        goto no_memory;
    return 0;
no_memory:
    unexpose_frames(state);
    PyErr_NoMemory();
    return -1;
#else
    (void)tstate; /* no entry frames: chains lie in the heap */
    (void)state;
    return 0;
#endif
}

void gl_py_cancel_switch(gl_py_saved_state *state)
{
    unexpose_frames(state);
}

PyObject *gl_py_state_frame(gl_py_saved_state *state)
{
#if GL_PY == 310
    return (PyObject *)state->top_frame_object;
#else
    frame_t *first = suspended_chain(state);
    while (first && !frame_is_complete(first))
        first = first->previous;
    if (!first || make_frame_object(first) < 0)
        return NULL;
    return (PyObject *)first->frame_obj;
#endif
}

/* ---------------------------------------------------------- orphans */

#if GL_PY == 310
/* A 3.10 frame that runs is held once by its eval loop's caller, on the
 * C stack, and by the frame it calls (f_back); a generator's, by it. */
static Py_ssize_t dead_stack_references(PyFrameObject *frame, int innermost)
{
    return frame->f_gen ? 0 : 1 + !innermost;
}

/* The depth of the innermost frame's evaluation stack, when the switch
 * that suspended it was a switch() or throw() it called itself: their
 * arguments ended its stack (call_top). -1: not known (a running frame
 * keeps its depth in its eval loop's C locals only). */
static int innermost_depth(const gl_py_saved_state *state, PyFrameObject *f)
{
    PyObject **top = state->call_top;
    if (!top || top < f->f_valuestack ||
        top > f->f_valuestack + f->f_code->co_stacksize)
        return -1;
    return (int)(top - f->f_valuestack);
}

int gl_py_state_traverse_orphaned(gl_py_saved_state *state, visitproc visit,
                                  void *arg)
{
    int innermost = 1;
    for (PyFrameObject *f = state->top_frame; f; f = f->f_back, innermost = 0) {
        /* Only what the frame alone holds, and only a frame nothing else
         * holds: what its C caller held is the greenlet's now. */
        Py_ssize_t ours = dead_stack_references(f, innermost);
        if (!ours || Py_REFCNT(f) != ours)
            continue;
        PyObject **end = f->f_valuestack;
        if (innermost && innermost_depth(state, f) > 0)
            end += innermost_depth(state, f);
        for (PyObject **slot = f->f_localsplus; slot < end; slot++)
            Py_VISIT(*slot);
        Py_VISIT(f->f_locals);
    }
    return 0;
}

void gl_py_state_release_orphaned(gl_py_saved_state *state)
{
    size_t count = 0;
    for (PyFrameObject *f = state->top_frame; f; f = f->f_back)
        count++;
    PyFrameObject **frames = PyMem_Malloc((count + 1) * sizeof *frames);
    if (!frames)
        return; /* they leak */
    size_t i = 0;
    for (PyFrameObject *f = state->top_frame; f; f = f->f_back)
        frames[i++] = (PyFrameObject *)Py_NewRef(f);
    if (count && innermost_depth(state, frames[0]) >= 0) /* frame_dealloc */
        frames[0]->f_stackdepth = innermost_depth(state, frames[0]);
    state->top_frame = NULL;
    state->top_frame_object = NULL;
    state->call_top = state->call_keywords = NULL;
    for (i = 0; i < count; i++)
        if (!frames[i]->f_gen)
            Py_DECREF(frames[i]); /* the reference of its dead C caller */
    for (i = 0; i < count; i++)
        Py_DECREF(frames[i]);
    PyMem_Free(frames);
}
#else
/* How many of the frame's slots (its locals, then its evaluation stack)
 * hold references it owns: a frame whose code called a Python function
 * keeps its stack's depth (stacktop); the greenlet's innermost frame,
 * when the switch that suspended it was a switch() or throw() it called
 * itself, has its stack end where their arguments did (call_top; 3.13
 * keeps the keyword names of CALL_KW there too); otherwise only the locals
 * are known (a frame that called into C keeps its depth in its eval loop's
 * C locals). */
static int owned_slots(const gl_py_saved_state *state, frame_t *frame)
{
    PyCodeObject *code = CODE_OF(frame);
    int locals = code->co_nlocalsplus, most = locals + code->co_stacksize;
    if (frame->stacktop >= locals && frame->stacktop <= most)
        return frame->stacktop;
    PyObject **top = state->call_top;
    if (frame != suspended_chain(state) || !top ||
        top < frame->localsplus + locals || top > frame->localsplus + most)
        return locals;
    int depth = (int)(top - frame->localsplus);
#if GL_PY >= 313
    if (depth < most && state->call_keywords &&
        frame->localsplus[depth] == state->call_keywords)
        depth++;
#endif
    return depth;
}

struct orphan_visit {
    const gl_py_saved_state *state;
    visitproc visit;
    void *arg;
};

static int visit_orphan_frame(frame_t *frame, void *context)
{
    struct orphan_visit *v = context;
    if (frame->owner != FRAME_OWNED_BY_THREAD || !frame_is_complete(frame))
        return 0; /* a generator's frame is its own to show */
    /* A frame object held by others will take these (adopt_frame). */
    if (frame->frame_obj && Py_REFCNT(frame->frame_obj) > 1)
        return 0;
    visitproc visit = v->visit;
    void *arg = v->arg;
    Py_VISIT(frame->f_locals);
    Py_VISIT(FUNCTION_OF(frame));
    int slots = owned_slots(v->state, frame);
    for (int i = 0; i < slots; i++)
        Py_VISIT(frame->localsplus[i]);
    return 0;
}

int gl_py_state_traverse_orphaned(gl_py_saved_state *state, visitproc visit,
                                  void *arg)
{
    struct orphan_visit v = {state, visit, arg};
    int outcome = for_each_frame(suspended_chain(state), visit_orphan_frame, &v);
    return outcome > 0 ? outcome : 0;
}

/* The frame object of `frame` is held by others: it takes the frame (its
 * code, function, and `slots` slots), as CPython does when a frame that
 * has a frame object ends, so that it outlives the data stack. Its f_back
 * stays empty: the frames below are being released too. */
static void adopt_frame(frame_t *frame, int slots)
{
    PyFrameObject *object = frame->frame_obj;
    frame->frame_obj = NULL; /* the copy does not point back at it */
    frame_t *copy = (frame_t *)object->_f_frame_data;
    memcpy(copy, frame, offsetof(frame_t, localsplus) +
                            (size_t)slots * sizeof(PyObject *));
    copy->owner = FRAME_OWNED_BY_FRAME_OBJECT;
    copy->previous = NULL;
    copy->stacktop = slots;
    object->f_frame = copy;
    if (!PyObject_GC_IsTracked((PyObject *)object))
        PyObject_GC_Track(object);
    Py_DECREF(object); /* the interpreter frame's reference */
}

/* Releases what one frame of the thread holds, as _PyFrame_Clear would:
 * its first `slots` slots, its locals dict, function and code. */
static void release_thread_frame(frame_t *frame, int slots)
{
    if (frame->frame_obj && Py_REFCNT(frame->frame_obj) > 1) {
        adopt_frame(frame, slots);
        return;
    }
    PyFrameObject *object = frame->frame_obj;
    frame->frame_obj = NULL;
    Py_XDECREF(object); /* reads the frame: before anything is cleared */
    for (int i = 0; i < slots; i++)
        Py_CLEAR(frame->localsplus[i]);
    Py_CLEAR(frame->f_locals);
    Py_CLEAR(FUNCTION_OF(frame));
    PyObject *code = (PyObject *)CODE_OF(frame);
    frame->CODE_FIELD = NULL;
    Py_XDECREF(code);
}

/* A generator's frame in the chain: it never runs again. Its link into
 * the chain, whose frames are freed, goes; it takes its stack depth where
 * that is known, and is marked completed, so that its generator's own
 * deallocation releases its frame and closing it has nothing to do. */
static void end_generator_frame(frame_t *frame, int slots)
{
    frame->previous = NULL;
    frame->stacktop = slots;
    _PyFrame_GetGenerator(frame)->gi_frame_state = FRAME_COMPLETED;
}

struct orphan_frame {
    frame_t *frame;
    int slots;
    PyObject *generator; /* strong, for a generator's frame; else NULL */
};

struct orphan_list {
    const gl_py_saved_state *state;
    struct orphan_frame *frames;
    size_t count, capacity;
    int failed;
};

static int list_orphan_frame(frame_t *frame, void *context)
{
    struct orphan_list *list = context;
    if (frame->owner != FRAME_OWNED_BY_THREAD &&
        frame->owner != FRAME_OWNED_BY_GENERATOR)
        return 0;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 16;
        struct orphan_frame *grown =
            PyMem_RawRealloc(list->frames, capacity * sizeof *grown);
        if (!grown) {
            list->failed = 1;
            return 1;
        }
        list->frames = grown;
        list->capacity = capacity;
    }
    PyObject *generator = NULL;
    if (frame->owner == FRAME_OWNED_BY_GENERATOR) /* kept while we work */
        generator = Py_NewRef((PyObject *)_PyFrame_GetGenerator(frame));
    list->frames[list->count++] =
        (struct orphan_frame){frame, owned_slots(list->state, frame), generator};
    return 0;
}

void gl_py_state_release_orphaned(gl_py_saved_state *state)
{
    /* The frames are listed first: releasing runs code (finalizers). */
    struct orphan_list list = {state, NULL, 0, 0, 0};
    for_each_frame(suspended_chain(state), list_orphan_frame, &list);
    if (list.failed) {
        for (size_t i = 0; i < list.count; i++)
            Py_XDECREF(list.frames[i].generator);
        PyMem_RawFree(list.frames);
        return; /* no memory: they leak */
    }
    state->top_frame = NULL;
#if GL_PY >= 312
    state->exposed_top = NULL;
#endif
    state->call_top = state->call_keywords = NULL;
    _PyStackChunk *chunks = state->datastack_chunk;
    state->datastack_chunk = NULL;
    state->datastack_top = state->datastack_limit = NULL;
    for (size_t i = 0; i < list.count; i++) {
        struct orphan_frame *f = &list.frames[i];
        if (f->generator)
            end_generator_frame(f->frame, f->slots);
        else
            release_thread_frame(f->frame, f->slots);
    }
    for (size_t i = 0; i < list.count; i++)
        Py_XDECREF(list.frames[i].generator);
    PyMem_RawFree(list.frames);
    free_chunk_chain(chunks);
}
#endif /* GL_PY == 310 */

/* ----------------------------------------------------- monitor's walks */

#if GL_PY == 310
static void walk_frame_objects(PyFrameObject *frame,
                               gl_py_frame_visitor *visit, void *context)
{
    for (; frame; frame = frame->f_back)
        if (visit(frame->f_code, PyFrame_GetLineNumber(frame), context))
            return;
}
#else
struct walk {
    gl_py_frame_visitor *visit;
    void *context;
};

static int visit_complete(frame_t *frame, void *context)
{
    struct walk *walk = context;
    if (!frame_is_complete(frame))
        return 0; /* not started: no line yet, and not shown by Python */
    PyCodeObject *code = CODE_OF(frame);
    int line = PyCode_Addr2Line(code, _PyInterpreterFrame_LASTI(frame) *
                                          (int)sizeof(_Py_CODEUNIT));
    return walk->visit(code, line, walk->context);
}
#endif

void gl_py_state_walk_frames(const gl_py_saved_state *state,
                             gl_py_frame_visitor *visit, void *context)
{
#if GL_PY == 310
    walk_frame_objects(state->top_frame, visit, context);
#else
    struct walk walk = {visit, context};
    for_each_frame(suspended_chain(state), visit_complete, &walk);
#endif
}

void gl_py_thread_walk_frames(unsigned long native_id,
                              gl_py_frame_visitor *visit, void *context)
{
    PyInterpreterState *interpreter = PyInterpreterState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(interpreter); t;
         t = PyThreadState_Next(t)) {
        if (gl_py_native_thread_id(t) != native_id)
            continue;
#if GL_PY == 310
        walk_frame_objects(t->frame, visit, context);
#else
        struct walk walk = {visit, context};
        for_each_frame(CURRENT_FRAME(t), visit_complete, &walk);
#endif
        return;
    }
}

/* --------------------------------------------------------- stack holders */

#if GL_PY >= 312
/* A running chain's frame whose caller is an entry frame holds that
 * address, on the thread's C stack; the frame itself lies in the heap (a
 * data-stack chunk, a generator). */
static int visit_entry_link(frame_t *frame, void *context)
{
    void **visitor = context;
    if (frame->owner != FRAME_OWNED_BY_CSTACK && frame->previous &&
        frame->previous->owner == FRAME_OWNED_BY_CSTACK)
        ((gl_py_holder_visitor *)visitor[0])(&frame->previous, visitor[1]);
    return 0;
}
#endif

void gl_py_visit_stack_holders(gl_py_holder_visitor *visit, void *context)
{
    PyInterpreterState *interpreter = PyInterpreterState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(interpreter); t;
         t = PyThreadState_Next(t)) {
#if GL_PY <= 312
        visit(&t->cframe, context);
#endif
#if GL_PY >= 312
        void *visitor[2] = {(void *)visit, context};
        for_each_frame(CURRENT_FRAME(t), visit_entry_link, visitor);
#endif
    }
}

void gl_py_state_visit_stack_holders(const gl_py_saved_state *state,
                                     gl_py_holder_visitor *visit,
                                     void *context)
{
    visit(&state->c_frame_record, context);
    visit(&state->exc_previous_item, context);
    visit(&state->exc_info, context);
#if GL_PY >= 312
    /* The links cut: the chain holds none into the stack while suspended. */
    for (int i = 0; i < state->changed_count; i++)
        visit(&state->changed_links[i].original_previous, context);
#endif
}

/* ------------------------------------------------------- frame memory */

#if GL_PY >= 311
static void visit_chunk_chain(const _PyStackChunk *chunk,
                              gl_py_region_visitor *visit, void *context)
{
    for (; chunk; chunk = chunk->previous)
        visit(chunk, chunk->size, context);
}
#endif

void gl_py_visit_frame_memory(gl_py_region_visitor *visit, void *context)
{
#if GL_PY >= 311
    PyInterpreterState *interpreter = PyInterpreterState_Get();
    for (PyThreadState *t = PyInterpreterState_ThreadHead(interpreter); t;
         t = PyThreadState_Next(t))
        visit_chunk_chain(t->datastack_chunk, visit, context);
    for (int i = 0; i < spare_chunks.count; i++)
        visit(spare_chunks.chunks[i], spare_chunks.chunks[i]->size, context);
#else
    (void)visit; /* 3.10's frames are objects */
    (void)context;
#endif
}

void gl_py_state_visit_frame_memory(const gl_py_saved_state *state,
                                    gl_py_region_visitor *visit,
                                    void *context)
{
#if GL_PY >= 311
    visit_chunk_chain(state->datastack_chunk, visit, context);
#else
    (void)state;
    (void)visit;
    (void)context;
#endif
}

/* --------------------------------------------------------- resurrection */

void gl_py_resurrect(PyObject *object)
{
    Py_SET_REFCNT(object, 1);
}

/* As PyObject_CallFinalizerFromDealloc undoes its own resurrection, in
 * each version. */
int gl_py_unresurrect(PyObject *object)
{
    Py_ssize_t count = Py_REFCNT(object) - 1;
    Py_SET_REFCNT(object, count);
    if (count == 0)
        return 0;
#if GL_PY >= 313
    _Py_ResurrectReference(object);
#elif GL_PY == 312
    _Py_NewReferenceNoTotal(object);
#else
    _Py_NewReference(object);
#ifdef Py_REF_DEBUG
    _Py_RefTotal--; /* _Py_NewReference counted a new reference */
#endif
#endif
    Py_SET_REFCNT(object, count);
    /* A Python subclass's deallocation drops a reference to the type
     * once ours returns (subtype_dealloc); it is still in use. */
    if (PyType_HasFeature(Py_TYPE(object), Py_TPFLAGS_HEAPTYPE))
        Py_INCREF(Py_TYPE(object));
    PyObject_GC_Track(object);
    return 1;
}
