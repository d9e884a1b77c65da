/*
 * greenlet.c -- the life of a greenlet record outside of switches:
 * creation, parents, kill, destruction and the simple queries.
 */
#include "engine.h"

#include <string.h>

int gl_create(gl_greenlet **out, gl_run_function *run, void *argument,
              gl_greenlet *parent)
{
    if (!out || !run)
        return GL_EINVAL;
    gl__thread *thread = gl__this_thread();
    if (!thread)
        return GL_ENOMEM;
    if (!parent)
        parent = thread->current;
    else if (parent->thread != thread)
        return GL_EWRONGTHREAD;
    gl_greenlet *greenlet = gl__allocate(sizeof *greenlet);
    if (!greenlet)
        return GL_ENOMEM;
    memset(greenlet, 0, sizeof *greenlet);
    greenlet->thread = thread;
    greenlet->state = GL_STATE_NEW;
    greenlet->run = run;
    greenlet->argument = argument;
    greenlet->parent = parent;
    greenlet->created_ns = gl__monotonic_ns();

    gl__registry_lock();
    greenlet->references = 1; /* the caller's handle */
    parent->references++;
    gl__registry_add_greenlet(greenlet);
    gl__registry_unlock();
    *out = greenlet;
    return 0;
}

/* May the calling thread change this greenlet's stack or parent? Only its
 * own thread may, or anybody once that thread has exited. */
static int check_owner(const gl_greenlet *greenlet)
{
    gl__thread *owner = greenlet->thread;
    if (owner == gl__this_thread_record || owner->exited)
        return 0;
    return GL_EWRONGTHREAD;
}

int gl_kill(gl_greenlet *greenlet)
{
    if (!greenlet)
        return GL_EINVAL;
    if (greenlet->state == GL_STATE_DEAD)
        return 0;
    if (greenlet->state == GL_STATE_RUNNING || greenlet->is_main)
        return GL_EBUSY;
    int error = check_owner(greenlet);
    if (error)
        return error;
    gl__thread *thread = greenlet->thread;
    gl__records_change_begin(thread);
    gl__stack_discard(thread, greenlet);
    greenlet->state = GL_STATE_DEAD;
    gl__records_change_end(thread);
    return 0;
}

int gl_destroy(gl_greenlet *greenlet)
{
    if (!greenlet || greenlet->is_main)
        return GL_EINVAL;
    int error = gl_kill(greenlet);
    if (error)
        return error;
    gl__registry_lock();
    gl__greenlet_unreference(greenlet);
    gl__registry_unlock();
    return 0;
}

int gl_set_parent(gl_greenlet *greenlet, gl_greenlet *parent)
{
    if (!greenlet || !parent || greenlet->is_main)
        return GL_EINVAL;
    if (parent->thread != greenlet->thread)
        return GL_EWRONGTHREAD;
    int error = check_owner(greenlet);
    if (error)
        return error;
    for (const gl_greenlet *p = parent; p; p = p->parent)
        if (p == greenlet)
            return GL_ECYCLE;
    gl__registry_lock();
    gl_greenlet *old = greenlet->parent;
    parent->references++;
    greenlet->parent = parent;
    gl__greenlet_unreference(old);
    gl__registry_unlock();
    return 0;
}

gl_greenlet *gl_current(void)
{
    gl__thread *thread = gl__this_thread();
    return thread ? thread->current : NULL;
}

gl_greenlet *gl_main(void)
{
    gl__thread *thread = gl__this_thread();
    return thread ? &thread->main_greenlet : NULL;
}

gl_greenlet *gl_parent(const gl_greenlet *greenlet)
{
    return greenlet->parent;
}

gl_state gl_state_of(const gl_greenlet *greenlet)
{
    return greenlet->state;
}

uint64_t gl_id(const gl_greenlet *greenlet)
{
    return greenlet->id;
}

int gl_is_main(const gl_greenlet *greenlet)
{
    return greenlet->is_main;
}

int gl_is_mine(const gl_greenlet *greenlet)
{
    return greenlet->thread == gl__this_thread_record;
}

void gl_set_binding(gl_greenlet *greenlet, void *binding)
{
    greenlet->binding = binding;
}

void *gl_binding(const gl_greenlet *greenlet)
{
    return greenlet->binding;
}
