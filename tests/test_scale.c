/*
 * test_scale.c -- many greenlets at once: 10,000 live, suspended greenlets,
 * each with its own stack contents, switched to in turn and finished.
 */
#include "glengine.h"
#include "runner.h"
#include "stack_pattern.h"

#include <stdint.h>
#include <stdlib.h>

#define LIVE_GREENLETS 10000
#define ROUNDS 3

static gl_greenlet *scale_main;

/* Each greenlet answers every switch with its own index plus what it got,
 * from two levels of checked stack, until a throw ends it. */
static void answer_bottom(const struct frame_link *bottom, void *context)
{
    uintptr_t index = (uintptr_t)context;
    gl_message in = {NULL, 0};
    for (;;) {
        gl_message out = {(void *)(index + (uintptr_t)in.value), 0};
        CHECK_OK(gl_switch(scale_main, out, &in));
        check_chain(bottom);
        if (in.thrown)
            return;
    }
}

static gl_message answer(void *argument, gl_message first)
{
    (void)first;
    descend(1, (unsigned)(uintptr_t)argument, NULL, answer_bottom, argument);
    return (gl_message){argument, 0};
}

struct census {
    size_t suspended;
    size_t saved_bytes;
};

static int count_suspended(const gl_greenlet_info *info, void *context)
{
    struct census *census = context;
    census->suspended += info->state == GL_STATE_SUSPENDED;
    census->saved_bytes += info->saved_bytes;
    return 0;
}

TEST(ten_thousand_live_greenlets)
{
    gl_greenlet **greenlets = calloc(LIVE_GREENLETS, sizeof *greenlets);
    CHECK(greenlets != NULL);
    scale_main = gl_current();
    for (uintptr_t i = 0; i < LIVE_GREENLETS; i++) {
        CHECK_OK(gl_create(&greenlets[i], answer, (void *)i, NULL));
        gl_message in;
        CHECK_OK(gl_switch(greenlets[i], (gl_message){NULL, 0}, &in));
        CHECK(in.value == (void *)i);
    }
    struct census census = {0, 0};
    CHECK_EQ(gl_registry_walk(NULL, count_suspended, &census),
             LIVE_GREENLETS + 1);
    CHECK_EQ(census.suspended, LIVE_GREENLETS);
    CHECK_EQ(census.saved_bytes, gl_thread_saved_bytes());
    CHECK(census.saved_bytes >= (size_t)LIVE_GREENLETS * 2 * 512);
    for (uintptr_t round = 1; round <= ROUNDS; round++) {
        for (uintptr_t i = 0; i < LIVE_GREENLETS; i++) {
            gl_message in;
            CHECK_OK(gl_switch(greenlets[i], (gl_message){(void *)round, 0},
                               &in));
            CHECK(in.value == (void *)(i + round));
        }
    }
    for (uintptr_t i = 0; i < LIVE_GREENLETS; i++) {
        gl_message in;
        CHECK_OK(gl_switch(greenlets[i], (gl_message){NULL, 1}, &in));
        CHECK(in.value == (void *)i);
        CHECK_EQ(gl_state_of(greenlets[i]), GL_STATE_DEAD);
        CHECK_OK(gl_destroy(greenlets[i]));
    }
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 1);
    free(greenlets);
}
