/*
 * switch.c -- a switch from the C side: the checks of gl_switch(), and the
 * two ends of a greenlet's life: its first instructions after the
 * trampoline, and the switch to its parent when its run function returns.
 * What happens while the stack moves is in stack_slices.c.
 *
 * Everything that happens after the stack has moved runs inside the
 * last step (arrive), in the resumed greenlet: its reply is stored there. So
 * gl_switch() keeps nothing in registers across the switch and ends in a
 * tail call, and the assembly's frame sits right below the caller's: the
 * bytes copied with every switch are the caller's frames plus 64.
 */
#include "engine.h"

#include <time.h>

static inline int switch_now(gl__thread *thread, gl_greenlet *target,
                             gl_message message, gl_message *received)
{
    thread->transfer = message;
    thread->current->reply_to = received;
    thread->target = target;
    return gl__stack_switch(thread);
}

/* gl_switch() when anything is unusual: the thread's first call into the
 * engine, a refusal, or a switch to the running greenlet. Out of line, so
 * that the usual switch saves no registers. */
static __attribute__((noinline)) int
switch_unusually(gl_greenlet *target, gl_message message,
                 gl_message *received)
{
    gl__thread *thread = gl__this_thread();
    if (!thread)
        return GL_ENOMEM;
    if (!target)
        return GL_EINVAL;
    if (target->thread != thread)
        return target->thread->exited ? GL_ETHREADEXITED : GL_EWRONGTHREAD;
    if (target->state == GL_STATE_DEAD)
        return GL_EDEAD;
    if (target == thread->current) {
        if (received)
            *received = message;
        return 0;
    }
    return switch_now(thread, target, message, received);
}

int gl_switch(gl_greenlet *target, gl_message message, gl_message *received)
{
    gl__thread *thread = gl__this_thread_record;
    if (GL_UNLIKELY(!thread || !target || target->thread != thread ||
                    target->state == GL_STATE_DEAD ||
                    target == thread->current))
        return switch_unusually(target, message, received);
    return switch_now(thread, target, message, received);
}

/* The run function has returned: hand its result to the nearest live
 * ancestor. This greenlet's stack is abandoned, so nothing of it is saved;
 * but making room for the ancestor may still need memory. If none can be
 * had, the engine waits for memory and tries again rather than abort or
 * hand the result to somebody else: there is no caller left to report the
 * error to. */
static __attribute__((noreturn, noinline)) void finish(gl__thread *thread,
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

/* The root of every greenlet's frames, under the trampoline. Its frame is
 * copied with the rest of the greenlet's stack whenever that is saved
 * whole, so it is kept small: finish() is out of line. */
void gl__greenlet_begin(gl__thread *thread)
{
    gl__arrive(thread);
    gl_greenlet *self = thread->current;
    gl_message result = self->run(self->argument, thread->transfer);
    finish(gl__this_thread_record, result);
}
