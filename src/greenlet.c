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
    gl__thread *thread = gl__this_thread(); /* first: fork handlers */
    if (!thread)
        return GL_ENOMEM;
    gl__monitor_start();
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

/* Who may change a greenlet: its own thread, without locks, since only it
 * changes its records; other threads only once that thread has exited,
 * and under the registry lock, which thread exit holds from start to end.
 * After exit every greenlet of the thread is dead, so there is nothing to
 * kill then, only records to release or reparent. */
static int owner_has_exited(const gl_greenlet *greenlet)
{
    gl__registry_lock();
    int exited = greenlet->thread->exited;
    gl__registry_unlock();
    return exited;
}

int gl_kill(gl_greenlet *greenlet)
{
    if (!greenlet)
        return GL_EINVAL;
    gl__thread *thread = greenlet->thread;
    if (thread != gl__this_thread_record)
        return owner_has_exited(greenlet) ? 0 : GL_EWRONGTHREAD;
    if (greenlet->state == GL_STATE_DEAD)
        return 0;
    if (greenlet->state == GL_STATE_RUNNING || greenlet->is_main)
        return GL_EBUSY;
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
    int mine = greenlet->thread == gl__this_thread_record;
    if (mine) {
        int error = gl_kill(greenlet);
        if (error)
            return error;
    }
    gl__registry_lock();
    if (!mine && !greenlet->thread->exited) {
        gl__registry_unlock();
        return GL_EWRONGTHREAD;
    }
    gl__greenlet_unreference(greenlet);
    gl__registry_unlock();
    return 0;
}

/* Whether `greenlet` may take `parent`, which lives in another thread: only
 * a greenlet that never ran (it has no stack yet) may move, and only to the
 * calling thread. Under the registry lock. */
static int may_move_to(const gl_greenlet *greenlet, const gl_greenlet *parent)
{
    return greenlet->state == GL_STATE_NEW &&
           parent->thread == gl__this_thread_record;
}

int gl_set_parent(gl_greenlet *greenlet, gl_greenlet *parent)
{
    if (!greenlet || !parent || greenlet->is_main)
        return GL_EINVAL;
    int error = 0;
    gl__registry_lock(); /* readers of parent ids in other threads take it */
    int moving = parent->thread != greenlet->thread;
    if (moving && !may_move_to(greenlet, parent))
        error = GL_EWRONGTHREAD;
    else if (!moving && greenlet->thread != gl__this_thread_record &&
             !greenlet->thread->exited)
        error = GL_EWRONGTHREAD;
    for (const gl_greenlet *p = parent; p && !error; p = p->parent)
        if (p == greenlet)
            error = GL_ECYCLE;
    if (!error) {
        if (moving)
            gl__registry_move_greenlet(greenlet, parent->thread);
        gl_greenlet *old = greenlet->parent;
        parent->references++;
        greenlet->parent = parent;
        gl__greenlet_unreference(old);
    }
    gl__registry_unlock();
    return error;
}

void gl_hold(gl_greenlet *greenlet)
{
    gl__registry_lock();
    greenlet->references++;
    gl__registry_unlock();
}

void gl_release(gl_greenlet *greenlet)
{
    gl__registry_lock();
    gl__greenlet_unreference(greenlet);
    gl__registry_unlock();
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

int gl_thread_exited(const gl_greenlet *greenlet)
{
    return greenlet->thread != gl__this_thread_record &&
           owner_has_exited(greenlet);
}

void gl_set_binding(gl_greenlet *greenlet, void *binding)
{
    greenlet->binding = binding;
}

void *gl_binding(const gl_greenlet *greenlet)
{
    return greenlet->binding;
}
