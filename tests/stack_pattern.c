/*
 * stack_pattern.c -- see stack_pattern.h.
 */
#include "stack_pattern.h"

#include "runner.h"

static unsigned char pattern(unsigned seed, size_t i)
{
    return (unsigned char)(seed * 2654435761u + i * 40503u + (i >> 8));
}

void check_chain(const struct frame_link *link)
{
    for (; link; link = link->up)
        for (size_t i = 0; i < link->size; i++)
            if (link->data[i] != pattern(link->seed, i))
                test_fail(__FILE__, __LINE__,
                          "stack byte %zu of frame seed %u changed", i,
                          link->seed);
}

__attribute__((noinline)) void descend(unsigned levels, unsigned seed,
                                       const struct frame_link *up,
                                       bottom_action *at_bottom,
                                       void *context)
{
    unsigned char data[512];
    struct frame_link self = {up, data, sizeof data, seed};
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = pattern(seed, i);
    if (levels == 0)
        at_bottom(&self, context);
    else
        descend(levels - 1, seed * 7 + 1, &self, at_bottom, context);
    check_chain(&self);
}

_Thread_local gl_greenlet *bounce_home;

static void bounce_bottom(const struct frame_link *bottom, void *context)
{
    (void)context;
    for (;;) {
        gl_message in;
        CHECK_OK(gl_switch(bounce_home, (gl_message){NULL, 0}, &in));
        check_chain(bottom);
        if (in.thrown)
            return;
    }
}

gl_message bounce(void *argument, gl_message first)
{
    (void)first;
    uintptr_t levels = (uintptr_t)argument % 32;
    descend((unsigned)levels, (unsigned)(uintptr_t)argument, NULL,
            bounce_bottom, NULL);
    return (gl_message){argument, 0};
}

unsigned test_random(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}
