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

unsigned test_random(unsigned *state)
{
    *state = *state * 1103515245u + 12345u;
    return *state >> 8;
}
