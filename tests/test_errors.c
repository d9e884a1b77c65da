/*
 * test_errors.c -- every refusal and failure the engine reports: bad
 * arguments, dead targets, cycles of parents, killing what runs, and
 * allocation failures, after which nothing has changed and later calls
 * succeed.
 */
#include "glengine.h"
#include "runner.h"
#include "stack_pattern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static gl_message return_first(void *argument, gl_message first)
{
    (void)argument;
    return first;
}

TEST(bad_arguments_are_refused)
{
    gl_greenlet *g;
    CHECK_EQ(gl_create(NULL, return_first, NULL, NULL), GL_EINVAL);
    CHECK_EQ(gl_create(&g, NULL, NULL, NULL), GL_EINVAL);
    CHECK_EQ(gl_switch(NULL, (gl_message){NULL, 0}, NULL), GL_EINVAL);
    CHECK_EQ(gl_kill(NULL), GL_EINVAL);
    CHECK_EQ(gl_destroy(NULL), GL_EINVAL);
    CHECK_EQ(gl_destroy(gl_main()), GL_EINVAL);
    CHECK_OK(gl_create(&g, return_first, NULL, NULL));
    CHECK_EQ(gl_set_parent(NULL, g), GL_EINVAL);
    CHECK_EQ(gl_set_parent(g, NULL), GL_EINVAL);
    CHECK_EQ(gl_set_parent(gl_main(), g), GL_EINVAL);
    CHECK_OK(gl_destroy(g));
}

TEST(cyclic_parents_are_refused)
{
    gl_greenlet *a, *b, *c;
    CHECK_OK(gl_create(&a, return_first, NULL, NULL));
    CHECK_OK(gl_create(&b, return_first, NULL, a));
    CHECK_OK(gl_create(&c, return_first, NULL, b));
    CHECK_EQ(gl_set_parent(a, a), GL_ECYCLE);
    CHECK_EQ(gl_set_parent(a, c), GL_ECYCLE);
    CHECK_EQ(gl_set_parent(b, c), GL_ECYCLE);
    CHECK(gl_parent(a) == gl_main() && gl_parent(b) == a);
    CHECK_OK(gl_set_parent(c, a)); /* a sibling move is fine */
    CHECK(gl_parent(c) == a);
    CHECK_EQ(gl_set_parent(a, b), GL_ECYCLE);
    CHECK_OK(gl_destroy(c));
    CHECK_OK(gl_destroy(b));
    CHECK_OK(gl_destroy(a));
}

TEST(switching_to_a_dead_greenlet_is_refused)
{
    gl_greenlet *g;
    CHECK_OK(gl_create(&g, return_first, NULL, NULL));
    CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, NULL));
    CHECK_EQ(gl_state_of(g), GL_STATE_DEAD);
    gl_message in = {(void *)1, 1};
    CHECK_EQ(gl_switch(g, (gl_message){NULL, 0}, &in), GL_EDEAD);
    CHECK(in.value == (void *)1 && in.thrown == 1); /* left untouched */
    CHECK_OK(gl_kill(g)); /* killing the dead does nothing */
    CHECK_OK(gl_destroy(g));
    CHECK_OK(gl_create(&g, return_first, NULL, NULL));
    CHECK_OK(gl_kill(g)); /* never started */
    CHECK_EQ(gl_switch(g, (gl_message){NULL, 0}, NULL), GL_EDEAD);
    CHECK_OK(gl_destroy(g));
}

static gl_message try_to_kill_self(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    CHECK_EQ(gl_kill(gl_current()), GL_EBUSY);
    CHECK_EQ(gl_destroy(gl_current()), GL_EBUSY);
    CHECK_EQ(gl_kill(gl_main()), GL_EBUSY);
    return (gl_message){(void *)7, 0};
}

TEST(running_greenlets_cannot_be_killed)
{
    gl_greenlet *g;
    gl_message in;
    CHECK_OK(gl_create(&g, try_to_kill_self, NULL, NULL));
    CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, &in));
    CHECK(in.value == (void *)7);
    CHECK_EQ(gl_kill(gl_main()), GL_EBUSY);
    CHECK_OK(gl_destroy(g));
}

/* ----------------------------------------------------- allocation failure */

/* Fails the allocation numbered `fail_at` (counting from 1 after arming),
 * and every one after it while `keep_failing` is set. */
static struct {
    atomic_long calls, fail_at, failures;
    atomic_int keep_failing;
} injector;

static int should_fail(void)
{
    injector.calls++;
    long fail_at = injector.fail_at;
    if (fail_at > 0 &&
        (injector.calls == fail_at ||
         (injector.keep_failing && injector.calls > fail_at))) {
        injector.failures++;
        return 1;
    }
    return 0;
}

static void *failing_allocate(size_t size, void *context)
{
    (void)context;
    return should_fail() ? NULL : malloc(size);
}

static void *failing_reallocate(void *memory, size_t size, void *context)
{
    (void)context;
    return should_fail() ? NULL : realloc(memory, size);
}

static void plain_release(void *memory, void *context)
{
    (void)context;
    free(memory);
}

static void arm_failure(long fail_at, int keep_failing)
{
    injector.calls = 0;
    injector.failures = 0;
    injector.fail_at = fail_at;
    injector.keep_failing = keep_failing;
}

static void install_injector(void)
{
    gl_allocator allocator = {failing_allocate, failing_reallocate,
                              plain_release, NULL};
    gl_set_allocator(&allocator);
    arm_failure(0, 0);
}

TEST(allocation_failure_in_create_is_reported)
{
    install_injector();
    gl_greenlet *main = gl_current();
    size_t before = gl_registry_walk(NULL, NULL, NULL);
    gl_greenlet *g = NULL;
    arm_failure(1, 0);
    CHECK_EQ(gl_create(&g, return_first, NULL, NULL), GL_ENOMEM);
    CHECK(g == NULL);
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), before);
    arm_failure(0, 0);
    CHECK_OK(gl_create(&g, return_first, NULL, NULL));
    CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, NULL));
    CHECK(gl_current() == main);
    CHECK_OK(gl_destroy(g));
}

static void *thread_without_memory(void *argument)
{
    (void)argument;
    arm_failure(1, 1);
    /* The thread's record and main greenlet cannot be allocated. */
    CHECK(gl_current() == NULL);
    CHECK(gl_main() == NULL);
    gl_greenlet *g;
    CHECK_EQ(gl_create(&g, return_first, NULL, NULL), GL_ENOMEM);
    arm_failure(0, 0);
    CHECK(gl_current() != NULL && gl_is_main(gl_current()));
    return NULL;
}

TEST(allocation_failure_for_a_threads_main_greenlet_is_reported)
{
    install_injector();
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, thread_without_memory, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
}

static gl_greenlet *test_main;

struct snapshot {
    size_t count;
    gl_greenlet_info records[8];
};

static int record_info(const gl_greenlet_info *info, void *context)
{
    struct snapshot *snapshot = context;
    CHECK(snapshot->count < 8);
    snapshot->records[snapshot->count++] = *info;
    return 0;
}

static void take_snapshot(struct snapshot *snapshot)
{
    memset(snapshot, 0, sizeof *snapshot);
    gl_registry_walk(NULL, record_info, snapshot);
}

/* Two records are the same, heap copies where they were. */
static void check_same(const struct snapshot *a, const struct snapshot *b)
{
    CHECK_EQ(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        gl_greenlet_info x = a->records[i], y = b->records[i];
        CHECK_EQ(x.id, y.id);
        CHECK_EQ(x.state, y.state);
        CHECK_EQ(x.stack_pointer, y.stack_pointer);
        CHECK_EQ(x.stack_stop, y.stack_stop);
        CHECK_EQ(x.saved_bytes, y.saved_bytes);
        CHECK_EQ(x.saved_bytes_peak, y.saved_bytes_peak);
        CHECK_EQ(x.switches, y.switches);
        CHECK_EQ(x.heap_copy, y.heap_copy);
    }
}

struct failure_probe {
    gl_greenlet *self, *target;
    long fail_at;
    int failed;
};

/* Switches to the target with allocation number fail_at failing; if that
 * made the switch fail, checks that the refusal left everything as it was.
 * If the switch needed fewer allocations, it simply happened. */
static void switch_under_failure(const struct frame_link *bottom,
                                 void *context)
{
    struct failure_probe *probe = context;
    struct snapshot before, after;
    take_snapshot(&before);
    size_t saved_before = gl_thread_saved_bytes();
    arm_failure(probe->fail_at, 0);
    int error = gl_switch(probe->target, (gl_message){NULL, 0}, NULL);
    long failures = injector.failures;
    arm_failure(0, 0);
    if (error) {
        CHECK_EQ(error, GL_ENOMEM);
        CHECK_EQ(failures, 1);
        probe->failed = 1;
        take_snapshot(&after);
        check_same(&before, &after);
        CHECK_EQ(gl_thread_saved_bytes(), saved_before);
        CHECK(gl_current() == probe->self);
    }
    check_chain(bottom);
}

static gl_greenlet *high, *middle, *low;
static long failures_seen;

/* In `low`, whose stack lies below middle's and main's, all of them live:
 * resuming `high` (started at main's own level) must save low and middle
 * whole and main in part: three heap copies, at least two of them new
 * allocations (a kept copy may serve one), so failing the
 * second must undo what the first reserved. Fail each in turn, then let
 * the switch happen. From the second round on, middle and main are saved
 * already and only low is in the way. */
static gl_message probe_failures(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    bounce_home = low;
    for (int round = 0; round < 10; round++) {
        long failed_attempts = 0;
        for (long fail_at = 1;; fail_at++) {
            struct failure_probe probe = {low, high, fail_at, 0};
            descend(5, (unsigned)round, NULL, switch_under_failure, &probe);
            if (!probe.failed)
                break;
            failed_attempts++;
        }
        if (round == 0) /* low and middle saved whole, main in part */
            CHECK(failed_attempts >= 2);
        failures_seen += failed_attempts;
    }
    bounce_home = test_main;
    return (gl_message){NULL, 0};
}

static gl_message start_low(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    CHECK_OK(gl_switch(low, (gl_message){NULL, 0}, NULL));
    return (gl_message){NULL, 0};
}

static void start_from_here(const struct frame_link *bottom, void *context)
{
    (void)bottom;
    CHECK_OK(gl_switch(context, (gl_message){NULL, 0}, NULL));
}

TEST(allocation_failure_mid_switch_changes_nothing)
{
    install_injector();
    test_main = bounce_home = gl_current();
    CHECK_OK(gl_create(&high, bounce, (void *)10, NULL));
    CHECK_OK(gl_switch(high, (gl_message){NULL, 0}, NULL)); /* now saved */
    CHECK_OK(gl_create(&middle, start_low, NULL, NULL));
    CHECK_OK(gl_create(&low, probe_failures, NULL, middle));
    descend(30, 1, NULL, start_from_here, middle);
    CHECK(failures_seen >= 2);
    CHECK_EQ(gl_state_of(low), GL_STATE_DEAD);
    CHECK_EQ(gl_state_of(middle), GL_STATE_DEAD);
    CHECK_OK(gl_switch(high, (gl_message){NULL, 1}, NULL));
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    CHECK_OK(gl_destroy(high));
    CHECK_OK(gl_destroy(middle));
    CHECK_OK(gl_destroy(low));
}

/* A switch that must grow the heap copy of a partly saved greenlet and
 * then allocate for main: when that later allocation fails, the grown copy
 * must not have replaced the old one. */
static gl_greenlet *partly, *below_partly, *at_top;

static __attribute__((noinline)) void partly_deeper(int levels)
{
    volatile char ballast[1024];
    ballast[0] = 1;
    if (levels)
        partly_deeper(levels - 1);
    else /* below_partly's stop is above us: our lowest bytes get saved */
        CHECK_OK(gl_switch(below_partly, (gl_message){NULL, 0}, NULL));
    CHECK(ballast[0] == 1); /* (and no tail call: every level stays) */
}

static gl_message partly_run(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    CHECK_OK(gl_switch(below_partly, (gl_message){NULL, 0}, NULL));
    partly_deeper(3);
    return (gl_message){NULL, 0};
}

/* Every switch of this greenlet is made from this one frame, so its kept
 * heap copy fits each time and the only allocations of the switch to
 * at_top are partly's growth and then main's copy. */
static gl_message below_partly_run(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    struct snapshot before, after;
    CHECK_OK(gl_switch(partly, (gl_message){NULL, 0}, NULL));
    gl_greenlet_info info;
    gl_greenlet_get_info(partly, &info);
    CHECK(info.saved_bytes > 0);
    CHECK(info.saved_bytes < info.stack_stop - info.stack_pointer);
    long failed = 0;
    for (long fail_at = 1;; fail_at++) {
        take_snapshot(&before);
        arm_failure(fail_at, 0);
        int error = gl_switch(at_top, (gl_message){NULL, 0}, NULL);
        arm_failure(0, 0);
        if (!error)
            break;
        CHECK_EQ(error, GL_ENOMEM);
        take_snapshot(&after);
        check_same(&before, &after);
        failed++;
    }
    CHECK_EQ(failed, 2);
    return (gl_message){NULL, 0};
}

static __attribute__((noinline)) void start_partly_deeper(void)
{
    volatile char ballast[2048];
    ballast[0] = 1;
    CHECK_OK(gl_switch(partly, (gl_message){NULL, 0}, NULL));
    CHECK(ballast[0] == 1);
}

TEST(allocation_failure_leaves_heap_copies_where_they_were)
{
    install_injector();
    test_main = bounce_home = gl_current();
    CHECK_OK(gl_create(&at_top, bounce, (void *)2, NULL));
    CHECK_OK(gl_switch(at_top, (gl_message){NULL, 0}, NULL)); /* suspended */
    CHECK_OK(gl_create(&partly, partly_run, NULL, NULL));
    CHECK_OK(gl_create(&below_partly, below_partly_run, NULL, partly));
    start_partly_deeper();
    CHECK_OK(gl_switch(at_top, (gl_message){NULL, 1}, NULL));
    CHECK_EQ(gl_state_of(at_top), GL_STATE_DEAD);
    CHECK_OK(gl_switch(below_partly, (gl_message){NULL, 0}, NULL));
    CHECK_EQ(gl_state_of(below_partly), GL_STATE_DEAD);
    CHECK_EQ(gl_state_of(partly), GL_STATE_DEAD);
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    CHECK_OK(gl_destroy(at_top));
    CHECK_OK(gl_destroy(below_partly));
    CHECK_OK(gl_destroy(partly));
}

/* A greenlet whose parent cannot be resumed for lack of memory when it
 * finishes waits for memory instead of aborting, then finishes. */
static void *release_memory_later(void *argument)
{
    (void)argument;
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    injector.fail_at = 0;
    return NULL;
}

static gl_message finish_without_memory(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    pthread_t helper;
    arm_failure(1, 1); /* from now on every allocation fails... */
    CHECK(pthread_create(&helper, NULL, release_memory_later, NULL) == 0);
    CHECK(pthread_detach(helper) == 0); /* ...until the helper steps in */
    return (gl_message){(void *)5, 0};
}

static void start_and_return_deep(const struct frame_link *bottom,
                                  void *context)
{
    CHECK_OK(gl_switch(context, (gl_message){NULL, 0}, NULL));
    check_chain(bottom);
}

TEST(finishing_greenlet_waits_for_memory_to_resume_its_parent)
{
    install_injector();
    test_main = bounce_home = gl_current();
    gl_greenlet *parked, *finisher;
    /* parked starts at main's level and is suspended; finisher is its
     * child, started from 20 levels down in main, so finishing into parked
     * needs main's frames saved. */
    CHECK_OK(gl_create(&parked, bounce, (void *)2, NULL));
    CHECK_OK(gl_switch(parked, (gl_message){NULL, 0}, NULL));
    CHECK_OK(gl_create(&finisher, finish_without_memory, NULL, parked));
    descend(20, 5, NULL, start_and_return_deep, finisher);
    /* finisher's result went to parked, which bounced back here. */
    CHECK_EQ(gl_state_of(finisher), GL_STATE_DEAD);
    CHECK_EQ(gl_state_of(parked), GL_STATE_SUSPENDED);
    CHECK(injector.failures > 0);
    CHECK_OK(gl_switch(parked, (gl_message){NULL, 1}, NULL));
    CHECK_OK(gl_destroy(finisher));
    CHECK_OK(gl_destroy(parked));
}
