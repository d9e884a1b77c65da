/*
 * stack_pattern.h -- recursion with checked stack contents, for tests that
 * must prove that a greenlet's stack survives every switch byte for byte.
 *
 * descend() recurses a given number of levels, each holding 512 bytes of a
 * pattern of its own, all linked so that any level can check every level
 * above it; it runs a callback at the bottom and checks each level again on
 * the way out.
 */
#ifndef GL_TEST_STACK_PATTERN_H
#define GL_TEST_STACK_PATTERN_H

#include <stddef.h>

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

/* A small deterministic generator, so failures replay. */
unsigned test_random(unsigned *state);

#endif /* GL_TEST_STACK_PATTERN_H */
