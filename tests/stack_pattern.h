/*
 * stack_pattern.h -- recursion with checked stack contents, for tests that
 * must prove that a greenlet's stack survives every switch byte for byte.
 *
 * descend() recurses a given number of levels, each holding 512 bytes of a
 * pattern of its own, all linked so that any level can check every level
 * above it; it runs a callback at the bottom and checks each level again on
 * the way out. bounce() is a greenlet body built on it.
 */
#ifndef GL_TEST_STACK_PATTERN_H
#define GL_TEST_STACK_PATTERN_H

#include <stddef.h>

#include "glengine.h"

struct frame_link {
    const struct frame_link *up;
    const unsigned char *data;
    size_t size;
    unsigned seed;
};

typedef void bottom_action(const struct frame_link *bottom, void *context);

/* Fails the test if any byte of `link` or the levels above it changed. */
void check_chain(const struct frame_link *link);

void descend(unsigned levels, unsigned seed, const struct frame_link *up,
             bottom_action *at_bottom, void *context);

/* A run function for greenlets that recurse (uintptr_t)argument % 32
 * levels of checked frames, then switch to this thread's bounce_home every
 * time they are switched to, checking their frames each time, until a
 * throw arrives; they then return `argument`. */
extern _Thread_local gl_greenlet *bounce_home;
gl_message bounce(void *argument, gl_message first);

/* A small deterministic generator, so failures replay. */
unsigned test_random(unsigned *state);

#endif /* GL_TEST_STACK_PATTERN_H */
