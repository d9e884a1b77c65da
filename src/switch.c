/*
 * switch.c -- a switch from the C side: the checks of gl_switch(), the two
 * steps that the assembly in arch/ calls while it moves the stack (save and
 * restore), the runtime's hooks around them, and the two ends of a
 * greenlet's life: its first instructions after the trampoline, and the
 * switch to its parent when its run function returns.
 *
 * Everything that happens after the stack has moved runs inside the
 * restore step, in the resumed greenlet: its reply is stored there too. So
 * gl_switch() keeps nothing in registers across the switch and ends in a
 * tail call, and the assembly's frame sits right below the caller's: the
 * bytes copied with every switch are the caller's frames plus 64.
 */
#include "engine.h"
#include "sanitizers.h"

#include <time.h>

static gl_runtime_hooks hooks;

void gl_set_runtime_hooks(const gl_runtime_hooks *new_hooks)
{
    static const gl_runtime_hooks none;
    hooks = new_hooks ? *new_hooks : none;
}

uintptr_t gl_switch_frame_ip(void)
{
    return (uintptr_t)gl__switch_suspended_ip;
}

/* Counts and states once the stack belongs to `target`. */
static void commit_switch(gl__thread *thread, gl_greenlet *target)
{
    gl_greenlet *origin = thread->current;
    origin->state =
        thread->origin_finished ? GL_STATE_DEAD : GL_STATE_SUSPENDED;
    target->state = GL_STATE_RUNNING;
    target->switches++;
    target->last_ran_serial = ++thread->switch_serial;
    thread->origin = origin;
    thread->current = target;
    thread->origin_finished = 0;
}

/* In the greenlet that has just got the stack, its bytes back in place. */
static void arrive(gl__thread *thread)
{
    gl_greenlet *self = thread->current;
    gl__sanitizer_switch_end(self->sanitizer_fake_stack);
    if (hooks.restore_state)
        hooks.restore_state(self, hooks.context);
    if (hooks.observe)
        hooks.observe(thread->origin, self, thread->transfer.thrown,
                      hooks.context);
}

gl__switch_step gl__switch_save(gl__thread *thread, char *stack_pointer)
{
    gl_greenlet *origin = thread->current, *target = thread->target;
    gl__switch_step step = {NULL, GL__SWITCH_MOVE};
    if (hooks.save_state)
        hooks.save_state(origin, hooks.context);
    gl__sanitizer_switch_begin(thread->origin_finished
                                   ? NULL
                                   : &origin->sanitizer_fake_stack,
                               thread->stack_low, thread->stack_high);
    gl__records_change_begin(thread);
    origin->stack_pointer = stack_pointer;
    gl__sanitizer_note_switch_pointer(&thread->deepest_switch_pointer,
                                      stack_pointer);
    if (target->state == GL_STATE_NEW) {
        /* It starts right below us; nothing of anybody's is in the way. */
        gl__slices_start(thread, target, stack_pointer);
        commit_switch(thread, target);
        gl__records_change_end(thread);
        step.action = GL__SWITCH_START;
        return step;
    }
    int error = gl__slices_vacate(thread, target);
    if (GL_UNLIKELY(error)) {
        gl__records_change_end(thread);
        gl__sanitizer_switch_end(origin->sanitizer_fake_stack);
        if (hooks.restore_state) /* undo save_state */
            hooks.restore_state(origin, hooks.context);
        step.action = error;
        return step;
    }
    step.stack_pointer = target->stack_pointer;
    return step;
}

void gl__switch_restore(gl__thread *thread)
{
    gl_greenlet *target = thread->target;
    gl__slices_refill(thread, target);
    commit_switch(thread, target);
    gl__records_change_end(thread);
    arrive(thread);
    if (target->reply_to)
        *target->reply_to = thread->transfer;
}

int gl_switch(gl_greenlet *target, gl_message message, gl_message *received)
{
    gl__thread *thread = gl__this_thread();
    if (GL_UNLIKELY(!thread))
        return GL_ENOMEM;
    if (GL_UNLIKELY(!target))
        return GL_EINVAL;
    if (GL_UNLIKELY(target->thread != thread))
        return target->thread->exited ? GL_ETHREADEXITED : GL_EWRONGTHREAD;
    if (GL_UNLIKELY(target->state == GL_STATE_DEAD))
        return GL_EDEAD;
    if (GL_UNLIKELY(target == thread->current)) {
        if (received)
            *received = message;
        return 0;
    }
    thread->transfer = message;
    thread->current->reply_to = received;
    thread->target = target;
    return gl__stack_switch(thread);
}

/* The run function has returned: hand its result to the nearest live
 * ancestor. This greenlet's stack is abandoned, so nothing of it is saved;
 * but making room for the ancestor may still need memory. If none can be
 * had, the engine waits for memory and tries again rather than abort or
 * hand the result to somebody else: there is no caller left to report the
 * error to. */
static __attribute__((noreturn)) void finish(gl__thread *thread,
                                             gl_message result)
{
    gl_greenlet *ancestor = thread->current->parent;
    while (ancestor->state == GL_STATE_DEAD)
        ancestor = ancestor->parent; /* the main greenlet never is */
    for (;;) {
        thread->transfer = result;
        thread->origin_finished = 1;
        thread->target = ancestor;
        gl__stack_switch(thread); /* returns only on failure */
        thread->origin_finished = 0;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

void gl__greenlet_begin(gl__thread *thread)
{
    arrive(thread);
    gl_greenlet *self = thread->current;
    gl_message result = self->run(self->argument, thread->transfer);
    finish(gl__this_thread_record, result);
}
