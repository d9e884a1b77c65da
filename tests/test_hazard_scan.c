/*
 * test_hazard_scan.c -- the hazard scan (inspect/hazard_scan.c) in C: a
 * global that keeps a pointer to a suspended greenlet's stack buffer is
 * found, with its holder, target, greenlet and saved region; the known-
 * holder callback leaves words out; a greenlet with the same addresses
 * saved gives a second hit for the same holder; nothing is found once the
 * pointer is cleared, or when no greenlet is suspended. Native builds only.
 */
#ifdef GL_TEST_HAVE_INSPECT
#include "glinspect.h"
#include "runner.h"

#include <stdlib.h>
#include <string.h>

/* The holders: exported, so that dladdr can name them in the program. */
volatile uintptr_t gl_test_hazard_holder;
volatile uintptr_t gl_test_hazard_second_holder;

static gl_greenlet *hazard_home;

static __attribute__((noinline)) gl_message keep_a_stack_pointer(
    void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    volatile char buffer[64];
    memset((void *)buffer, 'h', sizeof buffer);
    gl_test_hazard_holder = (uintptr_t)&buffer[8];
    gl_test_hazard_second_holder = (uintptr_t)&buffer[0];
    CHECK_OK(gl_switch(hazard_home, (gl_message){NULL, 0}, NULL));
    gl_test_hazard_holder = 0;
    gl_test_hazard_second_holder = 0;
    __asm__ volatile("" ::: "memory");
    return (gl_message){NULL, 0};
}

static __attribute__((noinline)) gl_message park_once(void *argument,
                                                      gl_message first)
{
    (void)argument;
    (void)first;
    volatile char locals[256];
    memset((void *)locals, 'n', sizeof locals);
    CHECK_OK(gl_switch(hazard_home, (gl_message){NULL, 0}, NULL));
    __asm__ volatile("" ::: "memory");
    return (gl_message){NULL, 0};
}

static int leave_out_the_second(uintptr_t holder, void *context)
{
    (void)context;
    return holder == (uintptr_t)&gl_test_hazard_second_holder;
}

/* Calls the scan a few frames deeper than the test body, over the
 * addresses the suspended greenlet used. */
static __attribute__((noinline)) int scan_deeper(int depth,
                                                 gl_hazard_known *known,
                                                 gl_hazard_hit **hits,
                                                 size_t *count)
{
    volatile char pad[512];
    pad[0] = 0;
    int code = depth ? scan_deeper(depth - 1, known, hits, count)
                     : gl_hazard_scan(known, NULL, hits, count);
    __asm__ volatile("" ::: "memory");
    return code + pad[0];
}

TEST(hazard_scan_finds_a_global_pointer_into_a_saved_stack)
{
    gl_hazard_hit *hits;
    size_t count;
    CHECK_OK(gl_hazard_scan(NULL, NULL, &hits, &count));
    CHECK_EQ(count, 0); /* nothing suspended */
    gl_hazard_hits_free(hits, count);

    gl_greenlet *keeper;
    hazard_home = gl_current();
    CHECK_OK(gl_create(&keeper, keep_a_stack_pointer, NULL, NULL));
    CHECK_OK(gl_switch(keeper, (gl_message){NULL, 0}, NULL));
    gl_greenlet_info info;
    gl_greenlet_get_info(keeper, &info);
    CHECK(info.saved_bytes > 0);

    CHECK_OK(scan_deeper(4, leave_out_the_second, &hits, &count));
    CHECK_EQ(count, 1);
    CHECK_EQ(hits[0].holder, (uintptr_t)&gl_test_hazard_holder);
    CHECK_EQ(hits[0].target, gl_test_hazard_holder);
    CHECK_EQ(hits[0].greenlet_id, info.id);
    CHECK_EQ(hits[0].region_low, info.stack_pointer);
    CHECK_EQ(hits[0].region_high, info.stack_pointer + info.saved_bytes);
    CHECK_EQ(hits[0].holder_kind, GL_HAZARD_IN_OBJECT);
    CHECK(strlen(hits[0].object) > 0); /* the test program */
    char bytes[8];
    CHECK_OK(gl_read_stack(keeper, hits[0].target, bytes, sizeof bytes));
    CHECK(memcmp(bytes, "hhhhhhhh", 8) == 0); /* it points at the buffer */
    gl_hazard_hits_free(hits, count);
    CHECK_OK(scan_deeper(4, NULL, &hits, &count));
    CHECK_EQ(count, 2); /* without the callback, both holders */
    gl_hazard_hits_free(hits, count);

    /* A greenlet started at the same depth has the same addresses saved:
     * each holder then gives a hit per greenlet, in a row. */
    gl_greenlet *neighbour;
    CHECK_OK(gl_create(&neighbour, park_once, NULL, NULL));
    CHECK_OK(gl_switch(neighbour, (gl_message){NULL, 0}, NULL));
    CHECK_OK(scan_deeper(4, leave_out_the_second, &hits, &count));
    CHECK_EQ(count, 2);
    CHECK_EQ(hits[0].holder, hits[1].holder);
    CHECK(hits[0].greenlet_id != hits[1].greenlet_id);
    CHECK(hits[0].greenlet_id == info.id || hits[1].greenlet_id == info.id);
    gl_hazard_hits_free(hits, count);
    CHECK_OK(gl_switch(neighbour, (gl_message){NULL, 0}, NULL));
    CHECK_OK(gl_destroy(neighbour));

    CHECK_OK(gl_switch(keeper, (gl_message){NULL, 0}, NULL));
    CHECK_EQ(gl_state_of(keeper), GL_STATE_DEAD);
    CHECK_OK(gl_hazard_scan(NULL, NULL, &hits, &count));
    CHECK_EQ(count, 0);
    gl_hazard_hits_free(hits, count);
    CHECK_OK(gl_destroy(keeper));
    CHECK_EQ(gl_hazard_scan(NULL, NULL, NULL, &count), GL_EINVAL);
}
#endif /* GL_TEST_HAVE_INSPECT */
