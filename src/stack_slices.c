/*
 * stack_slices.c -- the stack-slice algorithm: which bytes of the one C
 * stack of a thread move to the heap, and back, when it switches greenlets;
 * and the two steps that arch/ calls while it moves the stack pointer (save
 * and restore), with the runtime's hooks around them. They share one file
 * so that the compiler inlines the algorithm into the steps: this is the
 * switch's hot path.
 *
 * A greenlet owns the stack from its stack_stop (where it started) down to
 * wherever its calls reach. To resume greenlet T, everything below
 * T->stack_stop must be T's own, so the bytes that other greenlets still
 * have there are copied to their heap copies first; then T's saved bytes are
 * copied back. Greenlets whose bytes lie above T->stack_stop stay where they
 * are. Copies are lazy: a suspended greenlet may be partly saved (its
 * lowest bytes, nearest the stack pointer) and partly live.
 *
 *   higher addresses
 *   +------------------------+ main: stack_stop = top of the thread's stack
 *   | main, live             |
 *   +------------------------+ A->stack_stop
 *   | A, live part           |
 *   |- - - - - - - - - - - - |<-- T->stack_stop: below here must be freed
 *   | A, saved on resume of T|    A: saved up to T->stack_stop only
 *   +------------------------+ B->stack_stop
 *   | B, saved whole         |
 *   +------------------------+ origin->stack_stop
 *   | origin (the running    |
 *   | greenlet), saved whole |
 *   +------------------------+ stack pointer at the switch
 *   lower addresses
 *
 * The greenlets that may have live bytes form a chain through `live_above`
 * from the running greenlet up to the main greenlet; saving walks it from the
 * bottom. A new greenlet needs nothing saved: it starts just below its
 * starter's stack pointer, and its stack_stop is set there.
 *
 * Saving is all or nothing: heap copies are grown first, and only when
 * every allocation has succeeded are bytes copied and counts changed, so an
 * allocation failure leaves every greenlet exactly as it was.
 *
 * The hot path is shaped for the short switch of a ping-pong: one greenlet
 * in the way, a heap copy that fits already, no save_state hook. Everything
 * but copying the target's bytes back is done before the stack pointer
 * moves; after it, the refill step is one memcpy.
 */
#include "engine.h"
#include "sanitizers.h"

#include <string.h>

/* Moves the greenlet's and its thread's saved bytes by `delta` (may be
 * negative), keeping both peaks. */
static inline void account_saved(gl_greenlet *greenlet, ptrdiff_t delta)
{
    gl__thread *thread = greenlet->thread;
    greenlet->saved_bytes += delta;
    if (greenlet->saved_bytes > greenlet->saved_bytes_peak)
        greenlet->saved_bytes_peak = greenlet->saved_bytes;
    thread->saved_bytes += delta;
    if (thread->saved_bytes > thread->saved_bytes_peak)
        thread->saved_bytes_peak = thread->saved_bytes;
}

/* How far up the stack `owner` must be saved so that the stack below
 * `stop` is free: to its own stack_stop, or to `stop` if that is lower. */
static char *save_limit(const gl_greenlet *owner, char *stop)
{
    return owner->stack_stop < stop ? owner->stack_stop : stop;
}

/* Calls `visit` on each greenlet of the chain starting at `first` that has
 * bytes below `stop`, excluding `target` (which needs its own bytes), and
 * stops at the first failure. Returns 0 or that failure. */
typedef int slice_visitor(gl_greenlet *owner, char *limit);
static inline __attribute__((always_inline)) int for_each_slice_below(gl_greenlet *first, gl_greenlet *target,
                                char *stop, slice_visitor *visit)
{
    for (gl_greenlet *owner = first; owner && owner != target;
         owner = owner->live_above) {
        char *limit = save_limit(owner, stop);
        if (limit > owner->stack_pointer + owner->saved_bytes) {
            int error = visit(owner, limit);
            if (error)
                return error;
        }
        if (owner->stack_stop >= stop)
            break; /* it goes on above `stop`: nothing further up is hit */
    }
    return 0;
}

/* Heap copies are kept: a greenlet whose bytes are copied back keeps its
 * heap copy for its next save, unless the copy is bigger than KEEP_LIMIT,
 * so that a steady ping-pong allocates nothing and a save usually finds
 * room already. A kept copy is used again if it fits: big enough, and not
 * more than about twice what it will hold (a greenlet that once went deep
 * and now suspends shallow does not hold on to the deep copy). So what a
 * greenlet holds beyond its saved bytes is bounded by what it holds, except
 * for one copy while it runs or its bytes are live. */
#define KEEP_LIMIT (256 * 1024)

static inline int copy_fits(size_t capacity, size_t needed)
{
    return needed <= capacity && capacity <= 2 * needed + 4096;
}

/* The block reserved in new_copy becomes the heap copy, with the bytes
 * saved so far. */
static __attribute__((noinline)) void adopt_new_copy(gl_greenlet *owner)
{
    if (owner->saved_bytes)
        memcpy(owner->new_copy, owner->heap_copy, owner->saved_bytes);
    gl__release_scrubbed(owner->heap_copy, owner->heap_capacity);
    owner->heap_copy = owner->new_copy;
    owner->heap_capacity = owner->new_capacity;
    owner->new_copy = NULL;
    owner->new_capacity = 0;
}

/* Reserves a new block of `size` bytes for `owner`'s heap copy (adopted
 * when its bytes are copied). Not realloc: the old block, freed
 * unscrubbed, would keep its stack bytes in the heap. */
static __attribute__((noinline)) int reserve_block(gl_greenlet *owner,
                                                   size_t size)
{
    char *block = gl__allocate(size);
    if (!block)
        return GL_ENOMEM;
    owner->new_copy = block;
    owner->new_capacity = size;
    return 0;
}

/* Gives back the capacity of `owner`'s heap copy beyond its saved bytes,
 * when that copy is too big to keep. */
static void trim_heap_copy(gl_greenlet *owner)
{
    if (owner->heap_capacity <= KEEP_LIMIT ||
        owner->heap_capacity == owner->saved_bytes)
        return;
    if (owner->saved_bytes == 0) {
        gl__release_scrubbed(owner->heap_copy, owner->heap_capacity);
        owner->heap_copy = NULL;
        owner->heap_capacity = 0;
        return;
    }
    if (reserve_block(owner, owner->saved_bytes) == 0) /* if not, it stays */
        adopt_new_copy(owner);
}

/* Frees the heap copy of a greenlet that will never run again. */
static void drop_heap_copy(gl_greenlet *greenlet)
{
    if (greenlet->heap_copy) {
        account_saved(greenlet, -(ptrdiff_t)greenlet->saved_bytes);
        gl__release_scrubbed(greenlet->heap_copy, greenlet->heap_capacity);
        greenlet->heap_copy = NULL;
        greenlet->heap_capacity = 0;
    }
}

/* Makes sure a block that fits `owner`'s bytes up to `limit` is ready: its
 * kept copy, or a new block that copy_slice_to_heap adopts. Until then
 * nothing of the owner's changes, so undo_reserve undoes it all. */
static inline int reserve_heap_copy(gl_greenlet *owner, char *limit)
{
    size_t needed = (size_t)(limit - owner->stack_pointer);
    if (GL_LIKELY(copy_fits(owner->heap_capacity, needed)))
        return 0;
    int error = reserve_block(owner, needed);
    /* A copy that is only too big can serve as it is. */
    return error && needed <= owner->heap_capacity ? 0 : error;
}

static int undo_reserve(gl_greenlet *owner, char *limit)
{
    (void)limit;
    /* It never held stack bytes, but every block that is a heap copy's is
     * zeroed when freed: one rule, which tests can check. */
    gl__release_scrubbed(owner->new_copy, owner->new_capacity);
    owner->new_copy = NULL;
    owner->new_capacity = 0;
    return 0;
}

/* Saves `owner`'s bytes up to `limit`, into a heap copy that has room. */
static inline void copy_bytes_to_heap(gl_greenlet *owner, char *limit)
{
    char *from = owner->stack_pointer + owner->saved_bytes;
    char *to = owner->heap_copy + owner->saved_bytes;
    size_t bytes = (size_t)(limit - from);
    account_saved(owner, (ptrdiff_t)bytes); /* first: memcpy ends the work */
    gl__sanitizer_stack_readable(from, bytes);
    memcpy(to, from, bytes);
}

static inline int copy_slice_to_heap(gl_greenlet *owner, char *limit)
{
    if (GL_UNLIKELY(owner->new_copy != NULL))
        adopt_new_copy(owner);
    copy_bytes_to_heap(owner, limit);
    return 0;
}

/* The first greenlet of the chain that may hold live bytes once the origin
 * has left: the origin itself, unless it finished (its bytes are garbage). */
static gl_greenlet *chain_after_origin(gl__thread *thread)
{
    gl_greenlet *origin = thread->current;
    return thread->origin_finished ? origin->live_above : origin;
}

/* vacate() for any number of greenlets in the way; all or nothing. */
static __attribute__((noinline)) int vacate_all(gl_greenlet *first,
                                                gl_greenlet *target)
{
    char *stop = target->stack_stop;
    int error = for_each_slice_below(first, target, stop, reserve_heap_copy);
    if (GL_UNLIKELY(error)) {
        for_each_slice_below(first, target, stop, undo_reserve);
        return error;
    }
    return for_each_slice_below(first, target, stop, copy_slice_to_heap);
}

/* Whether `first`, the lowest greenlet of the chain, is the only one with
 * bytes below the target's stop: it goes on above that stop, or the next
 * one up is the target itself. */
static inline int only_first_in_way(const gl_greenlet *first,
                                    const gl_greenlet *target)
{
    return first && first != target &&
           (first->stack_stop >= target->stack_stop ||
            first->live_above == target);
}

/* Saves whatever other greenlets still have below the target's stop. */
static inline int vacate(gl__thread *thread, gl_greenlet *target)
{
    gl_greenlet *first = chain_after_origin(thread);
    char *stop = target->stack_stop;
    if (GL_LIKELY(only_first_in_way(first, target))) {
        /* The common case, a ping-pong among others: only the first is in
         * the way, so there is nothing to undo if its allocation fails. */
        char *limit = save_limit(first, stop);
        if (limit <= first->stack_pointer + first->saved_bytes)
            return 0;
        int error = reserve_heap_copy(first, limit);
        return GL_UNLIKELY(error) ? error : copy_slice_to_heap(first, limit);
    }
    return vacate_all(first, target);
}

static inline void start_below(gl__thread *thread, gl_greenlet *target,
                               char *stack_pointer)
{
    target->stack_stop = stack_pointer;
    target->live_above = chain_after_origin(thread);
}

/* The target's link up the chain of live stacks, as it will be once its
 * bytes are back: past the greenlets that lie entirely below its stop,
 * which vacate() has just saved whole. `above` starts as the chain after
 * the origin. */
static inline void link_above(gl_greenlet *above, gl_greenlet *target)
{
    while (above && above->stack_stop <= target->stack_stop)
        above = above->live_above;
    target->live_above = above;
}

/* ------------------------------------------- the steps that arch/ calls */

static gl_runtime_hooks hooks;
static int hooks_on_arrival; /* restore_state or observe is set */

void gl_set_runtime_hooks(const gl_runtime_hooks *new_hooks)
{
    static const gl_runtime_hooks none;
    hooks = new_hooks ? *new_hooks : none;
    hooks_on_arrival = hooks.restore_state || hooks.observe;
}

uintptr_t gl_switch_frame_ip(void)
{
    return (uintptr_t)gl__switch_suspended_ip;
}

/* Counts and states once the stack belongs to `target`. `finished`: the
 * origin's run has returned (thread->origin_finished). */
static inline void commit_switch(gl__thread *thread, gl_greenlet *origin,
                                 gl_greenlet *target, int finished)
{
    if (GL_UNLIKELY(finished)) {
        drop_heap_copy(origin); /* the copy it kept for a next save */
        thread->origin_finished = 0;
    }
    origin->state = finished ? GL_STATE_DEAD : GL_STATE_SUSPENDED;
    target->state = GL_STATE_RUNNING;
    target->switches++;
    target->last_ran_serial = ++thread->switch_serial;
    thread->origin = origin;
    thread->current = target;
}

/* Out of line, so that a switch without hooks saves no registers for them. */
static __attribute__((noinline)) void run_arrival_hooks(gl__thread *thread,
                                                        gl_greenlet *self)
{
    if (hooks.restore_state)
        hooks.restore_state(self, hooks.context);
    if (hooks.observe)
        hooks.observe(thread->origin, self, thread->transfer.thrown,
                      hooks.context);
}

/* In the greenlet that has just got the stack, its bytes back in place. */
static inline void arrive(gl__thread *thread)
{
    gl_greenlet *self = thread->current;
    gl__sanitizer_switch_end(self->sanitizer_fake_stack);
    if (hooks_on_arrival)
        run_arrival_hooks(thread, self);
}

void gl__arrive(gl__thread *thread)
{
    arrive(thread);
}

/* The first of every save, with the origin's stack pointer. */
static inline void begin_save(gl__thread *thread, gl_greenlet *origin,
                              char *stack_pointer)
{
    gl__sanitizer_switch_begin(thread->origin_finished
                                   ? NULL
                                   : &origin->sanitizer_fake_stack,
                               thread->stack_low, thread->stack_high);
    gl__records_change_begin(thread);
    origin->stack_pointer = stack_pointer;
    gl__sanitizer_note_switch_pointer(&thread->deepest_switch_pointer,
                                      stack_pointer);
}

/* The save step in every case: hooks, a start, any number of greenlets in
 * the way, a heap copy to grow, an error. */
static __attribute__((noinline)) gl__switch_step
save_in_general(gl__thread *thread, char *stack_pointer)
{
    gl_greenlet *origin = thread->current, *target = thread->target;
    gl__switch_step step = {NULL, GL__SWITCH_MOVE};
    if (hooks.save_state)
        hooks.save_state(origin, hooks.context);
    begin_save(thread, origin, stack_pointer);
    if (target->state == GL_STATE_NEW) {
        /* It starts right below us; nothing of anybody's is in the way. */
        start_below(thread, target, stack_pointer);
        commit_switch(thread, origin, target, thread->origin_finished);
        gl__records_change_end(thread);
        step.action = GL__SWITCH_START;
        return step;
    }
    int error = vacate(thread, target);
    if (GL_UNLIKELY(error)) {
        gl__records_change_end(thread);
        gl__sanitizer_switch_end(thread->origin_finished
                                     ? NULL
                                     : origin->sanitizer_fake_stack);
        if (hooks.restore_state) /* undo save_state */
            hooks.restore_state(origin, hooks.context);
        step.action = error;
        return step;
    }
    /* Only the target's bytes are missing now: the records say what they
     * will be once the refill step has copied them back. */
    link_above(chain_after_origin(thread), target);
    commit_switch(thread, origin, target, thread->origin_finished);
    step.stack_pointer = target->stack_pointer;
    return step;
}

/* The save step of the short switch a ping-pong makes: no save_state
 * hook, a target that has run before, and only the origin in the way, with
 * a heap copy that fits already. It leaves the records as
 * save_in_general() would, but copies last, so that little stays in
 * registers across memcpy. */
gl__switch_step gl__switch_save(gl__thread *thread, char *stack_pointer)
{
    gl_greenlet *origin = thread->current, *target = thread->target;
    if (GL_UNLIKELY(hooks.save_state || thread->origin_finished ||
                    target->state == GL_STATE_NEW ||
                    !only_first_in_way(origin, target)))
        return save_in_general(thread, stack_pointer);
    /* A running greenlet has nothing saved. */
    char *limit = save_limit(origin, target->stack_stop);
    size_t bytes = limit > stack_pointer ? (size_t)(limit - stack_pointer) : 0;
    if (GL_UNLIKELY(bytes && !copy_fits(origin->heap_capacity, bytes)))
        return save_in_general(thread, stack_pointer);
    begin_save(thread, origin, stack_pointer);
    link_above(origin, target);
    commit_switch(thread, origin, target, 0);
    if (bytes)
        copy_bytes_to_heap(origin, limit);
    return (gl__switch_step){target->stack_pointer, GL__SWITCH_MOVE};
}

const char *gl__switch_refill(gl__thread *thread)
{
    gl_greenlet *target = thread->current;
    size_t bytes = target->saved_bytes;
    char *stack_pointer = target->stack_pointer;
    gl__sanitizer_stack_reused(thread->deepest_switch_pointer,
                               stack_pointer + bytes);
    if (!bytes)
        return stack_pointer;
    account_saved(target, -(ptrdiff_t)bytes);
    /* The frame stays in the heap copy if that holds it whole and is kept.
     * With hooks to run, it goes back too: a hook that broke the rule and
     * switched would otherwise have it overwritten there (the target's
     * next save writes at the copy's start). */
    int oversize = target->heap_capacity > KEEP_LIMIT;
    size_t skip = bytes >= GL__SWITCH_FRAME_BYTES && !oversize &&
                          !hooks_on_arrival
                      ? GL__SWITCH_FRAME_BYTES
                      : 0;
    memcpy(stack_pointer + skip, target->heap_copy + skip, bytes - skip);
    if (skip)
        return target->heap_copy;
    if (GL_UNLIKELY(oversize))
        trim_heap_copy(target);
    return stack_pointer;
}

void gl__switch_arrive(gl__thread *thread)
{
    gl__records_change_end(thread);
    arrive(thread);
    gl_greenlet *self = thread->current;
    if (self->reply_to)
        *self->reply_to = thread->transfer;
}

void gl__stack_discard(gl__thread *thread, gl_greenlet *greenlet)
{
    drop_heap_copy(greenlet);
    /* If it still had live bytes, it is in the running chain: unlink it. */
    for (gl_greenlet *g = thread->current; g; g = g->live_above) {
        if (g->live_above == greenlet) {
            g->live_above = greenlet->live_above;
            break;
        }
    }
    greenlet->live_above = NULL;
}
