/*
 * switch.c -- a switch from the C side: checks, the runtime's hooks, the
 * call into arch/ that moves the stack, and the two ends of a greenlet's
 * life (its first instructions after the trampoline, and the switch to its
 * parent when its run function returns).
 *
 * Everything after gl__stack_switch() returns executes in the greenlet that
 * was resumed, not in the one that called it: locals of the caller are the
 * resumed greenlet's own again, while anything shared travels in the
 * thread record.
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

/* In the greenlet that has just got the stack. */
void gl__call_restore_and_observe(gl__thread *thread)
{
    gl_greenlet *self = thread->current;
    gl__sanitizer_switch_end(self->sanitizer_fake_stack);
    if (hooks.restore_state)
        hooks.restore_state(self, hooks.context);
    if (hooks.observe)
        hooks.observe(thread->origin, self, thread->transfer.thrown,
                      hooks.context);
}

/* Moves the thread to `target`, the message being in thread->transfer.
 * Returns 0 once somebody switches back to the caller, or an error with
 * nothing changed. */
static int switch_to(gl__thread *thread, gl_greenlet *target)
{
    gl_greenlet *origin = thread->current;
    if (hooks.save_state)
        hooks.save_state(origin, hooks.context);
    thread->target = target;
    gl__sanitizer_switch_begin(thread->origin_finished
                                   ? NULL
                                   : &origin->sanitizer_fake_stack,
                               thread->stack_low, thread->stack_high);
    int error = gl__stack_switch(thread);
    if (GL_UNLIKELY(error)) {
        gl__sanitizer_switch_end(origin->sanitizer_fake_stack);
        if (hooks.restore_state) /* undo save_state */
            hooks.restore_state(origin, hooks.context);
        return error;
    }
    gl__call_restore_and_observe(thread);
    return 0;
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
    if (target != thread->current) {
        thread->transfer = message;
        int error = switch_to(thread, target);
        if (error)
            return error;
        message = thread->transfer;
    }
    if (received)
        *received = message;
    return 0;
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
        switch_to(thread, ancestor); /* returns only on failure */
        thread->origin_finished = 0;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
}

void gl__greenlet_begin(gl__thread *thread)
{
    gl__call_restore_and_observe(thread);
    gl_greenlet *self = thread->current;
    gl_message result = self->run(self->argument, thread->transfer);
    finish(thread, result);
}
