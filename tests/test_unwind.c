/*
 * test_unwind.c -- unwinders walk greenlets: the CFI of the switch frame
 * leads from a suspended greenlet into its callers, and every greenlet's
 * stack ends cleanly at its root (the trampoline).
 *
 * Two unwinders: the compiler's own (libgcc's _Unwind_Backtrace, used by
 * C++ exceptions), on every architecture, walking a greenlet from inside
 * its own switch; and libunwind through inspect/'s gl_native_backtrace,
 * walking a suspended greenlet from outside, whether its stack is saved on
 * the heap or still in place.
 */
#include "glengine.h"
#include "runner.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unwind.h>

/* The root frame of every greenlet (arch/); its address is known at link
 * time even though the engine does not export it. */
void gl__greenlet_trampoline(void);

/* The return addresses that a correct walk from inside the switch must
 * meet: each function notes where it will return to in its caller. */
static uintptr_t return_into_level_one, return_into_run, return_into_begin;
/* level_two switches to each of these in turn, then returns. */
static gl_greenlet *switch_to_from_level_two[2];

static __attribute__((noinline)) void level_two(void)
{
    return_into_level_one = (uintptr_t)__builtin_return_address(0);
    for (int i = 0; i < 2 && switch_to_from_level_two[i]; i++)
        CHECK_OK(gl_switch(switch_to_from_level_two[i], (gl_message){NULL, 0},
                           NULL));
    __asm__ volatile("" ::: "memory"); /* not a tail call */
}

static __attribute__((noinline)) void level_one(void)
{
    return_into_run = (uintptr_t)__builtin_return_address(0);
    level_two();
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) gl_message suspend_two_levels_down(
    void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    return_into_begin = (uintptr_t)__builtin_return_address(0);
    level_one();
    __asm__ volatile("" ::: "memory");
    return (gl_message){NULL, 0};
}

/* -------------------------------------------- libgcc, from inside a switch */

#define MAX_FRAMES 64
static struct {
    uintptr_t ips[MAX_FRAMES];
    int count;
    _Unwind_Reason_Code end;
    int armed;
} walk;

static _Unwind_Reason_Code note_frame(struct _Unwind_Context *context,
                                      void *argument)
{
    (void)argument;
    if (walk.count < MAX_FRAMES)
        walk.ips[walk.count++] = (uintptr_t)_Unwind_GetIP(context);
    return _URC_NO_REASON;
}

/* The allocator runs inside the save step, which the switch routine calls
 * with its frame complete: unwinding from here crosses that frame. */
static void *walking_allocate(size_t size, void *context)
{
    (void)context;
    if (walk.armed) {
        walk.armed = 0;
        walk.end = _Unwind_Backtrace(note_frame, NULL);
    }
    return malloc(size);
}

static void *plain_reallocate(void *memory, size_t size, void *context)
{
    (void)context;
    return realloc(memory, size);
}

static void plain_release(void *memory, void *context)
{
    (void)context;
    free(memory);
}

static int walk_contains(uintptr_t ip)
{
    for (int i = 0; i < walk.count; i++)
        if (walk.ips[i] == ip)
            return 1;
    return 0;
}

TEST(unwinder_crosses_the_switch_frame_and_stops_at_the_root)
{
    gl_allocator allocator = {walking_allocate, plain_reallocate,
                              plain_release, NULL};
    gl_set_allocator(&allocator);
    switch_to_from_level_two[0] = gl_current();
    gl_greenlet *g;
    CHECK_OK(gl_create(&g, suspend_two_levels_down, NULL, NULL));
    /* Switching back to main saves g's stack: the walk happens in g. */
    walk.armed = 1;
    CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, NULL));
    CHECK_EQ(walk.armed, 0);
    CHECK_EQ(walk.end, _URC_END_OF_STACK);
    CHECK(walk_contains(return_into_level_one));
    CHECK(walk_contains(return_into_run));
    CHECK(walk_contains(return_into_begin));
    /* The last frame is the trampoline, whose return address is undefined
     * (libgcc reports one more frame, with IP 0, for that). */
    int last = walk.count - 1;
    if (last > 0 && walk.ips[last] == 0)
        last--;
    uintptr_t root = walk.ips[last];
    uintptr_t trampoline = (uintptr_t)gl__greenlet_trampoline;
    CHECK(root > trampoline && root < trampoline + 64);
    CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, NULL));
    CHECK_EQ(gl_state_of(g), GL_STATE_DEAD);
    CHECK_OK(gl_destroy(g));
}

/* The switch frame's size (arch/). */
#if defined(__aarch64__)
#define SWITCH_FRAME_BYTES 176
#else
#define SWITCH_FRAME_BYTES 64
#endif

/* From inside the arrive step: the resumed greenlet's registers are taken
 * from wherever its switch frame is (still in its heap copy, or in place),
 * and the CFI says so, so a walk from a hook leads into its frames. */
static gl_greenlet *walk_when_resuming, *g_of_the_walk;

static void walking_observe(gl_greenlet *origin, gl_greenlet *target,
                            int thrown, void *context)
{
    (void)origin;
    (void)thrown;
    (void)context;
    if (walk.armed && target == walk_when_resuming) {
        walk.armed = 0;
        walk.count = 0;
        walk.end = _Unwind_Backtrace(note_frame, NULL);
    }
}

static void check_walk_into_level_two(void)
{
    CHECK_EQ(walk.armed, 0);
    CHECK_EQ(walk.end, _URC_END_OF_STACK);
    CHECK(walk_contains(return_into_level_one));
    CHECK(walk_contains(return_into_run));
    CHECK(walk_contains(return_into_begin));
}

/* Runs in a greenlet started by `g` from level_two, so g's frames are in
 * place below main's when it resumes g. */
static gl_message resume_the_live_one(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    check_walk_into_level_two(); /* the first walk, from the heap copy */
    walk_when_resuming = g_of_the_walk;
    gl_greenlet_info info;
    gl_greenlet_get_info(walk_when_resuming, &info);
    CHECK_EQ(info.saved_bytes, 0);
    walk.armed = 1;
    return (gl_message){NULL, 0}; /* resumes g in level_two */
}

TEST(unwinder_crosses_the_switch_frame_from_the_arrive_step)
{
    gl_runtime_hooks hooks = {NULL, NULL, walking_observe, NULL};
    gl_set_runtime_hooks(&hooks);
    gl_greenlet *g, *child;
    CHECK_OK(gl_create(&g, suspend_two_levels_down, NULL, NULL));
    g_of_the_walk = g;
    /* g's frame in its heap copy: g goes back to main from level_two and
     * is saved whole; main resumes it. */
    switch_to_from_level_two[0] = gl_current();
    CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, NULL));
    gl_greenlet_info info;
    gl_greenlet_get_info(g, &info);
    CHECK(info.saved_bytes > SWITCH_FRAME_BYTES); /* the frame and more */
    walk_when_resuming = g;
    walk.armed = 1;
    /* g's second switch goes to `child`, which g starts below itself. */
    CHECK_OK(gl_create(&child, resume_the_live_one, NULL, NULL));
    CHECK_OK(gl_set_parent(child, g));
    switch_to_from_level_two[1] = child;
    CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, NULL));
    /* The second walk ran when child's return resumed g in place; g then
     * returned. */
    CHECK_EQ(gl_state_of(g), GL_STATE_DEAD);
    CHECK_EQ(gl_state_of(child), GL_STATE_DEAD);
    check_walk_into_level_two();
    CHECK_OK(gl_destroy(child));
    CHECK_OK(gl_destroy(g));
    gl_set_runtime_hooks(NULL);
}

/* --------------------------------------- libunwind, from outside (inspect) */
#ifdef GL_TEST_HAVE_LIBUNWIND
#include "glinspect.h"

static int frame_index(const gl_native_frame *frames, size_t count,
                       const char *function)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(frames[i].function, function) == 0)
            return (int)i;
    return -1;
}

/* The walk must go switch frame -> level_two -> level_one -> run ->
 * begin -> trampoline, in that order, and end there cleanly. */
static void check_backtrace_of_suspended(const gl_greenlet *g)
{
    gl_native_frame frames[MAX_FRAMES];
    size_t count;
    int reached_root = gl_native_backtrace(g, frames, MAX_FRAMES, &count);
    CHECK_EQ(reached_root, 1);
    CHECK_EQ(strcmp(frames[0].function, "gl__stack_switch"), 0);
    int two = frame_index(frames, count, "level_two");
    int one = frame_index(frames, count, "level_one");
    int run = frame_index(frames, count, "suspend_two_levels_down");
    int begin = frame_index(frames, count, "gl__greenlet_begin");
    CHECK(two > 0 && one == two + 1 && run == one + 1 && begin == run + 1);
    CHECK_EQ(begin + 2, (int)count);
    CHECK_EQ(strcmp(frames[count - 1].function, "gl__greenlet_trampoline"), 0);
    CHECK(frames[one].ip == return_into_level_one);
    CHECK(strstr(frames[one].object, "engine-tests") != NULL);
}

static gl_greenlet *suspended_greenlet;

static gl_message walk_the_live_one(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    gl_greenlet_info info;
    gl_greenlet_get_info(suspended_greenlet, &info);
    CHECK_EQ(info.saved_bytes, 0); /* it lies above us, all in place */
    check_backtrace_of_suspended(suspended_greenlet);
    return (gl_message){NULL, 0};
}

TEST(libunwind_walks_a_suspended_greenlet_to_its_run_function)
{
    gl_greenlet *g, *deeper;
    CHECK_OK(gl_create(&g, suspend_two_levels_down, NULL, NULL));
    CHECK_OK(gl_create(&deeper, walk_the_live_one, NULL, g));
    suspended_greenlet = g;
    switch_to_from_level_two[0] = gl_current();
    switch_to_from_level_two[1] = deeper;
    CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, NULL));
    /* Now g is suspended and saved whole on the heap. */
    gl_greenlet_info info;
    gl_greenlet_get_info(g, &info);
    CHECK_EQ(info.saved_bytes, info.stack_stop - info.stack_pointer);
    check_backtrace_of_suspended(g);

    /* Scribble over the stack where g was: the walk must not depend on it. */
    volatile unsigned char scribble[4096];
    memset((void *)scribble, 0xA5, sizeof scribble);
    check_backtrace_of_suspended(g);

    /* g resumes and starts `deeper`, which runs below g and walks it in
     * place; then both finish. */
    CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, NULL));
    CHECK_EQ(gl_state_of(deeper), GL_STATE_DEAD);
    CHECK_EQ(gl_state_of(g), GL_STATE_DEAD);

    /* Refusals: only suspended greenlets of this thread are walked. */
    size_t count;
    gl_native_frame frame;
    CHECK_EQ(gl_native_backtrace(gl_current(), &frame, 1, &count), GL_EINVAL);
    CHECK_EQ(gl_native_backtrace(g, &frame, 1, &count), GL_EINVAL);
    CHECK_OK(gl_destroy(deeper));
    CHECK_OK(gl_destroy(g));
}
#endif /* GL_TEST_HAVE_LIBUNWIND */
