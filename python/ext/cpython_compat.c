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

void gl_py_prepare_switch(PyThreadState *tstate)
{
    (void)tstate; /* gr_frame makes frame objects when asked: nothing here */
}

#if GL_PY >= 311
static void unexpose_frames(gl_py_saved_state *state);
#endif

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
    state->exc_info = tstate->exc_info;
    tstate->exc_state.exc_value = NULL;
    state->context = tstate->context; /* the reference moves */
    tstate->context = NULL;
#if GL_PY <= 311
    state->trash_delete_nesting = tstate->trash_delete_nesting;
#elif GL_PY == 312
    state->trash_delete_nesting = tstate->trash.delete_nesting;
#endif
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
    if (state->changed_count) /* before any eval loop resumes */
        unexpose_frames(state);
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
    tstate->exc_info = state->exc_info;
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
    while (spare_chunks.count > 0)
        free_chunk(spare_chunks.chunks[--spare_chunks.count]);
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

/* ------------------------------------------------ suspended frames, 3.11+ */

#if GL_PY >= 311
/* Reads a suspended greenlet's frames: those on its C stack (3.12+ entry
 * frames) through its view of its stack, the rest (data-stack chunks,
 * generators) in place. record NULL: everything in place (a thread's
 * running frames, whose stack is live). */
typedef struct frame_reader {
    const gl_greenlet *record;
    uintptr_t low, high;
} frame_reader;

static void reader_init(frame_reader *reader, const gl_greenlet *record)
{
    reader->record = NULL;
    reader->low = reader->high = 0;
    if (!record)
        return;
    gl_greenlet_info info;
    gl_greenlet_get_info(record, &info);
    if (info.state == GL_STATE_SUSPENDED && info.stack_stop > info.stack_pointer) {
        reader->record = record;
        reader->low = info.stack_pointer;
        reader->high = info.stack_stop;
    }
}

static int on_its_stack(const frame_reader *reader, const void *address)
{
    return reader->record && (uintptr_t)address >= reader->low &&
           (uintptr_t)address < reader->high;
}

/* Copies the fixed part of `frame` into *copy. 0, or -1 if unreadable. */
static int read_frame(const frame_reader *reader, const frame_t *frame,
                      frame_t *copy)
{
    if (on_its_stack(reader, frame))
        return gl_read_stack(reader->record, (uintptr_t)frame, copy,
                             sizeof *copy) == 0 ? 0 : -1;
    memcpy(copy, frame, sizeof *copy);
    return 0;
}

/* Whether the frame (a copy) has started running its code: frames that
 * have not, and 3.12+ entry frames, are not shown by Python. */
static int frame_is_complete(const frame_t *copy)
{
#if GL_PY >= 312
    if (copy->owner == FRAME_OWNED_BY_CSTACK)
        return 0;
#endif
    if (copy->owner == FRAME_OWNED_BY_GENERATOR)
        return 1;
    PyCodeObject *code = CODE_OF(copy);
    return INSTRUCTION_OF(copy) >= _PyCode_CODE(code) + code->_co_firsttraceable;
}

/* Calls each(frame, copy, context) for every frame of the chain from
 * `frame` down, until it returns nonzero (which is returned) or a frame
 * cannot be read (-1). */
typedef int frame_action(frame_t *frame, const frame_t *copy, void *context);
static int for_each_frame(const frame_reader *reader, frame_t *frame,
                          frame_action *each, void *context)
{
    while (frame) {
        frame_t copy;
        if (read_frame(reader, frame, &copy) < 0)
            return -1;
        int outcome = each(frame, &copy, context);
        if (outcome)
            return outcome;
        frame = copy.previous;
    }
    return 0;
}

/* Gives `frame` (complete, in the heap) its frame object, as the
 * interpreter would: _PyFrame_MakeAndSetFrameObject is not exported, but
 * PyFrame_GetBack of a stand-in frame whose caller is `frame` calls it.
 * Allocates: the caller keeps the collector off. 0, or -1 (no memory). */
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
    PyFrameObject *made = PyFrame_GetBack(&stand_in);
    if (!made)
        return -1;
    Py_DECREF(made); /* the frame keeps it */
    return 0;
}
#endif /* GL_PY >= 311 */

#if GL_PY >= 312
/* Makes `frame->previous` `previous`, noting the value to put back. */
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

struct exposure {
    gl_py_saved_state *state;
    frame_t *last_complete;
};

static int expose_one(frame_t *frame, const frame_t *copy, void *context)
{
    struct exposure *exposure = context;
    if (!frame_is_complete(copy))
        return 0; /* on the C stack, or not started: skipped */
    if (make_frame_object(frame) < 0)
        return -1;
    frame_t *last = exposure->last_complete;
    if (last && last->previous != frame &&
        change_link(exposure->state, last, frame) < 0)
        return -1;
    exposure->last_complete = frame;
    return 0;
}

/* Changes the chain so that it skips entry frames, gives every frame a
 * frame object. Allocates: the collector is kept off. 0 or -1. */
static int expose_frames(gl_py_saved_state *state, const gl_greenlet *record)
{
    if (state->exposed)
        return 0;
    frame_reader reader;
    reader_init(&reader, record);
    struct exposure exposure = {state, NULL};
    int was_enabled = PyGC_Disable();
    int outcome = for_each_frame(&reader, state->top_frame, expose_one,
                                 &exposure);
    frame_t *last = exposure.last_complete;
    if (outcome == 0 && last && last->previous &&
        change_link(state, last, NULL) < 0)
        outcome = -1;
    if (was_enabled)
        PyGC_Enable();
    if (outcome < 0) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return -1;
    }
    state->exposed = 1;
    return 0;
}
#endif /* GL_PY >= 312 */

#if GL_PY >= 311
/* Puts the chain's links back: in the switch, before any eval loop of the
 * greenlet resumes. Pointer stores only. */
static void unexpose_frames(gl_py_saved_state *state)
{
#if GL_PY >= 312
    for (int i = state->changed_count - 1; i >= 0; i--) {
        gl_py_changed_link *link = &state->changed_links[i];
        ((frame_t *)link->frame)->previous = link->original_previous;
    }
    explicit_bzero(state->changed_links,
                   (size_t)state->changed_count * sizeof *state->changed_links);
    state->changed_count = 0;
    state->exposed = 0;
#else
    (void)state;
#endif
}
#endif

#if GL_PY >= 311
static int find_complete(frame_t *frame, const frame_t *copy, void *context)
{
    if (!frame_is_complete(copy))
        return 0;
    *(frame_t **)context = frame;
    return 1;
}
#endif

PyObject *gl_py_state_frame(gl_py_saved_state *state,
                            const gl_greenlet *record)
{
#if GL_PY == 310
    (void)record;
    return (PyObject *)state->top_frame_object;
#else
#if GL_PY >= 312
    if (expose_frames(state, record) < 0)
        return NULL;
#endif
    frame_reader reader;
    reader_init(&reader, record);
    frame_t *first = NULL;
    if (for_each_frame(&reader, state->top_frame, find_complete, &first) <= 0)
        return NULL;
    int was_enabled = PyGC_Disable();
    int made = make_frame_object(first);
    if (was_enabled)
        PyGC_Enable();
    return made < 0 ? NULL : (PyObject *)first->frame_obj;
#endif
}

/* ---------------------------------------------------------- orphans */

int gl_py_state_prepare_orphan(gl_py_saved_state *state,
                               const gl_greenlet *record)
{
#if GL_PY >= 312
    return expose_frames(state, record);
#else
    (void)state; /* the chain lies in the heap already */
    (void)record;
    return 0;
#endif
}

#if GL_PY >= 311
/* Whether the frames of an orphan may be walked: their chain must not
 * pass through the C stack, which is gone. */
static int orphan_walkable(const gl_py_saved_state *state)
{
#if GL_PY >= 312
    return state->exposed;
#else
    (void)state;
    return 1;
#endif
}
#endif

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
    state->call_top = NULL;
    for (i = 0; i < count; i++)
        if (!frames[i]->f_gen)
            Py_DECREF(frames[i]); /* the reference of its dead C caller */
    for (i = 0; i < count; i++)
        Py_DECREF(frames[i]);
    PyMem_Free(frames);
}
#else
/* Whether the interpreter frame owns its references (not a generator's,
 * or a frame object's). */
static int owned_by_its_thread(const frame_t *copy)
{
    return copy->owner == FRAME_OWNED_BY_THREAD;
}

/* How many of the frame's slots (its locals, then its evaluation stack)
 * hold references it owns: a frame whose code called a Python function
 * keeps its stack's depth (stacktop); the greenlet's innermost frame,
 * when the switch that suspended it was a switch() or throw() it called
 * itself, has its stack end where their arguments did (call_top);
 * otherwise only the locals are known (a frame that called into C keeps
 * its depth in its eval loop's C locals). */
static int owned_slots(const gl_py_saved_state *state, frame_t *frame,
                       const frame_t *copy)
{
    PyCodeObject *code = CODE_OF(copy);
    int locals = code->co_nlocalsplus, most = locals + code->co_stacksize;
    if (copy->stacktop >= locals && copy->stacktop <= most)
        return copy->stacktop;
    PyObject **top = state->call_top;
    if (frame == state->top_frame && top >= frame->localsplus + locals &&
        top <= frame->localsplus + most)
        return (int)(top - frame->localsplus);
    return locals;
}

struct orphan_visit {
    const gl_py_saved_state *state;
    visitproc visit;
    void *arg;
};

static int visit_orphan_frame(frame_t *frame, const frame_t *copy,
                              void *context)
{
    struct orphan_visit *v = context;
    if (!owned_by_its_thread(copy) || !frame_is_complete(copy))
        return 0;
    /* A frame object held by others will take these (adopt_frame). */
    if (frame->frame_obj && Py_REFCNT(frame->frame_obj) > 1)
        return 0;
    visitproc visit = v->visit;
    void *arg = v->arg;
    Py_VISIT(frame->f_locals);
    Py_VISIT(FUNCTION_OF(frame));
    int slots = owned_slots(v->state, frame, copy);
    for (int i = 0; i < slots; i++)
        Py_VISIT(frame->localsplus[i]);
    return 0;
}

int gl_py_state_traverse_orphaned(gl_py_saved_state *state, visitproc visit,
                                  void *arg)
{
    if (!orphan_walkable(state))
        return 0;
    frame_reader in_place = {NULL, 0, 0};
    struct orphan_visit v = {state, visit, arg};
    int outcome = for_each_frame(&in_place, state->top_frame,
                                 visit_orphan_frame, &v);
    return outcome > 0 ? outcome : 0;
}

/* The frame object of `frame` is held by others: it takes the frame (its
 * code, function, and `slots` slots), as CPython does when a frame that
 * has a frame object ends, so that it outlives the data stack. */
static void adopt_frame(frame_t *frame, int slots)
{
    PyFrameObject *object = frame->frame_obj;
    frame_t *copy = (frame_t *)object->_f_frame_data;
    memcpy(copy, frame, offsetof(frame_t, localsplus) +
                            (size_t)slots * sizeof(PyObject *));
    copy->owner = FRAME_OWNED_BY_FRAME_OBJECT;
    copy->previous = NULL;
    copy->stacktop = slots;
    object->f_frame = copy;
    frame->frame_obj = NULL;
    if (!PyObject_GC_IsTracked((PyObject *)object))
        PyObject_GC_Track(object);
    Py_DECREF(object); /* the interpreter frame's reference */
}

/* Releases what one frame of the thread holds, as _PyFrame_Clear would:
 * its first `slots` slots, its locals dict, function and code. */
static void release_frame(frame_t *frame, int slots)
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

struct orphan_frame {
    frame_t *frame;
    int slots;
};

struct orphan_list {
    const gl_py_saved_state *state;
    struct orphan_frame *frames;
    size_t count, capacity;
    int failed;
};

static int list_orphan_frame(frame_t *frame, const frame_t *copy,
                             void *context)
{
    struct orphan_list *list = context;
    if (!owned_by_its_thread(copy) || !CODE_OF(copy))
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
    list->frames[list->count++] =
        (struct orphan_frame){frame, owned_slots(list->state, frame, copy)};
    return 0;
}

void gl_py_state_release_orphaned(gl_py_saved_state *state)
{
    if (!orphan_walkable(state))
        return; /* its chain ran through a C stack that is gone: it leaks */
    /* The frames are listed first: releasing runs code (finalizers). */
    frame_reader in_place = {NULL, 0, 0};
    struct orphan_list list = {state, NULL, 0, 0, 0};
    for_each_frame(&in_place, state->top_frame, list_orphan_frame, &list);
    if (list.failed) {
        PyMem_RawFree(list.frames);
        return; /* no memory: they leak */
    }
    state->top_frame = NULL;
    state->call_top = NULL;
    _PyStackChunk *chunks = state->datastack_chunk;
    state->datastack_chunk = NULL;
    state->datastack_top = state->datastack_limit = NULL;
    for (size_t i = 0; i < list.count; i++)
        release_frame(list.frames[i].frame, list.frames[i].slots);
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

static int visit_complete(frame_t *frame, const frame_t *copy, void *context)
{
    (void)frame;
    struct walk *walk = context;
    if (!frame_is_complete(copy))
        return 0; /* not started: no line yet, and not shown by Python */
    PyCodeObject *code = CODE_OF(copy);
    int line = PyCode_Addr2Line(
        code, _PyInterpreterFrame_LASTI((frame_t *)copy) *
                  (int)sizeof(_Py_CODEUNIT));
    return walk->visit(code, line, walk->context);
}
#endif

void gl_py_state_walk_frames(const gl_py_saved_state *state,
                             const gl_greenlet *record,
                             gl_py_frame_visitor *visit, void *context)
{
#if GL_PY == 310
    (void)record;
    walk_frame_objects(state->top_frame, visit, context);
#else
    frame_reader reader;
    reader_init(&reader, record);
    struct walk walk = {visit, context};
    for_each_frame(&reader, state->top_frame, visit_complete, &walk);
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
        frame_reader live = {NULL, 0, 0};
        struct walk walk = {visit, context};
        for_each_frame(&live, CURRENT_FRAME(t), visit_complete, &walk);
#endif
        return;
    }
}

/* --------------------------------------------------------- stack holders */

#if GL_PY >= 312
struct holders {
    const frame_reader *reader;
    gl_py_holder_visitor *visit;
    void *context;
};

/* A frame whose caller is an entry frame holds its address, on the C
 * stack; the frame itself lies in the heap (a data-stack chunk, a
 * generator). */
static int visit_entry_link(frame_t *frame, const frame_t *copy, void *context)
{
    struct holders *h = context;
    if (!copy->previous || copy->owner == FRAME_OWNED_BY_CSTACK)
        return 0;
    frame_t caller;
    if (read_frame(h->reader, copy->previous, &caller) == 0 &&
        caller.owner == FRAME_OWNED_BY_CSTACK)
        h->visit(&frame->previous, h->context);
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
        frame_reader live = {NULL, 0, 0};
        struct holders h = {&live, visit, context};
        for_each_frame(&live, CURRENT_FRAME(t), visit_entry_link, &h);
#endif
    }
}

void gl_py_state_visit_stack_holders(const gl_py_saved_state *state,
                                     const gl_greenlet *record,
                                     gl_py_holder_visitor *visit,
                                     void *context)
{
    visit(&state->c_frame_record, context);
    visit(&state->exc_previous_item, context);
    visit(&state->exc_info, context);
#if GL_PY >= 312
    for (int i = 0; i < state->changed_count; i++)
        visit(&state->changed_links[i].original_previous, context);
    frame_reader reader;
    reader_init(&reader, record);
    struct holders h = {&reader, visit, context};
    for_each_frame(&reader, state->top_frame, visit_entry_link, &h);
#else
    (void)record;
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
