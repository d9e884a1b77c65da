/*
 * test_stacks.c -- the stack-slice algorithm under load: deep recursion in
 * several greenlets interleaved with a main greenlet that itself switches
 * from varying depths, stack contents checked after every switch; 1 MB
 * deep greenlets; and heap-held bytes accounted exactly.
 */
#include "glengine.h"
#include "runner.h"
#include "stack_pattern.h"

#include <stdlib.h>
#include <string.h>

/* --------------------------------------------- interleaved deep greenlets */

#define WORKERS 6
#define STEPS 3000

struct worker {
    gl_greenlet *greenlet;
    unsigned depth;
    unsigned switches_left;
};

static unsigned random_state = 12345;
static unsigned next_random(void)
{
    return test_random(&random_state);
}

static gl_greenlet *main_greenlet;

static void worker_bottom(const struct frame_link *bottom, void *context)
{
    struct worker *worker = context;
    while (worker->switches_left > 0) {
        worker->switches_left--;
        CHECK_OK(gl_switch(main_greenlet, (gl_message){worker, 0}, NULL));
        check_chain(bottom);
    }
}

static gl_message worker_run(void *argument, gl_message first)
{
    struct worker *worker = argument;
    (void)first;
    descend(worker->depth, (unsigned)(worker->depth * 13 + 5), NULL,
            worker_bottom, worker);
    return (gl_message){NULL, 0};
}

static void main_bottom(const struct frame_link *bottom, void *context)
{
    struct worker *worker = context;
    CHECK_OK(gl_switch(worker->greenlet, (gl_message){NULL, 0}, NULL));
    check_chain(bottom);
}

TEST(deep_recursion_interleaved_keeps_stack_contents)
{
    struct worker workers[WORKERS];
    main_greenlet = gl_current();
    for (int i = 0; i < WORKERS; i++) {
        workers[i].depth = 20 + 37 * (unsigned)i; /* 10 KB .. 100 KB */
        workers[i].switches_left = 1000000;
        CHECK_OK(gl_create(&workers[i].greenlet, worker_run, &workers[i],
                           NULL));
    }
    for (int step = 0; step < STEPS; step++) {
        struct worker *worker = &workers[next_random() % WORKERS];
        /* Switch from a varying depth of main: new greenlets start at
         * different places and overlap each other in every way. */
        descend(next_random() % 40, (unsigned)step, NULL, main_bottom, worker);
    }
    for (int i = 0; i < WORKERS; i++) {
        workers[i].switches_left = 0;
        CHECK_OK(gl_switch(workers[i].greenlet, (gl_message){NULL, 0}, NULL));
        CHECK_EQ(gl_state_of(workers[i].greenlet), GL_STATE_DEAD);
        CHECK_OK(gl_destroy(workers[i].greenlet));
    }
    CHECK_EQ(gl_thread_saved_bytes(), 0);
}

/* --------------------------------------------------------- 1 MB of stack */

static void megabyte_bottom(const struct frame_link *bottom, void *context)
{
    (void)context;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(gl_switch(main_greenlet, (gl_message){NULL, 0}, NULL));
        check_chain(bottom);
    }
}

static gl_message megabyte_run(void *argument, gl_message first)
{
    (void)first;
    /* 2100 levels of a bit more than 512 bytes: over 1 MB. */
    descend(2100, (unsigned)(uintptr_t)argument, NULL, megabyte_bottom, NULL);
    return (gl_message){NULL, 0};
}

TEST(two_greenlets_each_over_one_megabyte_deep)
{
    gl_greenlet *a, *b;
    main_greenlet = gl_current();
    CHECK_OK(gl_create(&a, megabyte_run, (void *)1, NULL));
    CHECK_OK(gl_create(&b, megabyte_run, (void *)2, NULL));
    for (int i = 0; i < 6; i++) {
        CHECK_OK(gl_switch(a, (gl_message){NULL, 0}, NULL));
        CHECK_OK(gl_switch(b, (gl_message){NULL, 0}, NULL));
        if (i < 5) {
            gl_greenlet_info info;
            gl_greenlet_get_info(a, &info);
            CHECK(info.saved_bytes > 1024 * 1024);
            CHECK_EQ(info.saved_bytes, info.stack_stop - info.stack_pointer);
        }
    }
    CHECK_EQ(gl_state_of(a), GL_STATE_DEAD);
    CHECK_EQ(gl_state_of(b), GL_STATE_DEAD);
    CHECK_OK(gl_destroy(a));
    CHECK_OK(gl_destroy(b));
    CHECK_EQ(gl_thread_saved_bytes(), 0);
}

/* ------------------------------------------------------------ accounting */

struct totals {
    size_t sum;
    size_t records;
};

static int add_saved_bytes(const gl_greenlet_info *info, void *context)
{
    struct totals *totals = context;
    totals->sum += info->saved_bytes;
    totals->records++;
    if (info->state == GL_STATE_SUSPENDED) {
        /* The saved part is a prefix of the greenlet's stack. */
        CHECK(info->saved_bytes <= info->stack_stop - info->stack_pointer);
        CHECK((info->saved_bytes == 0) == (info->heap_copy == 0));
    } else {
        CHECK_EQ(info->saved_bytes, 0);
    }
    CHECK(info->saved_bytes <= info->saved_bytes_peak);
    return 0;
}

static void check_totals(void)
{
    struct totals totals = {0, 0};
    gl_registry_walk(NULL, add_saved_bytes, &totals);
    CHECK_EQ(totals.sum, gl_thread_saved_bytes());
    CHECK_EQ(totals.sum, gl_process_saved_bytes());
}

static void start_from_main_depth(const struct frame_link *bottom,
                                  void *context)
{
    (void)bottom;
    CHECK_OK(gl_switch(context, (gl_message){NULL, 0}, NULL));
}

TEST(heap_bytes_are_accounted_exactly)
{
    main_greenlet = bounce_home = gl_current();
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    gl_greenlet *shallow, *deep;
    CHECK_OK(gl_create(&shallow, bounce, (void *)4, NULL));
    CHECK_OK(gl_create(&deep, bounce, (void *)30, NULL));

    /* Started from main at depth 0: runs below main, and once main is
     * back, all of it is saved. */
    CHECK_OK(gl_switch(shallow, (gl_message){NULL, 0}, NULL));
    gl_greenlet_info info;
    gl_greenlet_get_info(shallow, &info);
    CHECK_EQ(info.state, GL_STATE_SUSPENDED);
    CHECK_EQ(info.saved_bytes, info.stack_stop - info.stack_pointer);
    CHECK_EQ(gl_thread_saved_bytes(), info.saved_bytes);
    check_totals();

    /* Start `deep` from 20 levels down in main: main's frames between there
     * and the switch get saved only when a greenlet started higher up
     * (shallow) resumes. */
    descend(20, 9, NULL, start_from_main_depth, deep);
    check_totals();
    /* Now resume `shallow` from deep inside main: main is partly saved,
     * from its stack pointer up to shallow's stack_stop. */
    descend(25, 11, NULL, start_from_main_depth, shallow);
    check_totals();

    for (int i = 0; i < 200; i++) {
        gl_greenlet *target = (i % 3) ? shallow : deep;
        descend((unsigned)(i % 17), (unsigned)i, NULL, start_from_main_depth,
                target);
        check_totals();
        gl_greenlet_get_info(target, &info);
        CHECK_EQ(info.saved_bytes, info.stack_stop - info.stack_pointer);
    }
    CHECK_OK(gl_switch(shallow, (gl_message){NULL, 1}, NULL));
    CHECK_OK(gl_switch(deep, (gl_message){NULL, 1}, NULL));
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    check_totals();
    gl_greenlet_get_info(deep, &info);
    CHECK(info.saved_bytes_peak >= 30 * 512);
    CHECK_OK(gl_destroy(shallow));
    CHECK_OK(gl_destroy(deep));
}

/* A greenlet suspended while a deeper one runs keeps its bytes live. */
static gl_greenlet *child_of_main, *grandchild_of_main;

static gl_message starts_grandchild(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    CHECK_OK(gl_switch(grandchild_of_main, (gl_message){NULL, 0}, NULL));
    return (gl_message){NULL, 0};
}

static gl_message reports_saved(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    gl_greenlet_info info;
    gl_greenlet_get_info(child_of_main, &info);
    CHECK_EQ(info.state, GL_STATE_SUSPENDED);
    CHECK_EQ(info.saved_bytes, 0); /* it lies above us, untouched */
    gl_greenlet_get_info(gl_main(), &info);
    CHECK_EQ(info.saved_bytes, 0);
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    return (gl_message){NULL, 0};
}

TEST(suspended_ancestors_stay_live_while_descendants_run)
{
    CHECK_OK(gl_create(&child_of_main, starts_grandchild, NULL, NULL));
    CHECK_OK(gl_create(&grandchild_of_main, reports_saved, NULL, NULL));
    CHECK_OK(gl_set_parent(grandchild_of_main, child_of_main));
    CHECK_OK(gl_switch(child_of_main, (gl_message){NULL, 0}, NULL));
    CHECK_EQ(gl_state_of(child_of_main), GL_STATE_DEAD);
    CHECK_EQ(gl_state_of(grandchild_of_main), GL_STATE_DEAD);
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    CHECK_OK(gl_destroy(grandchild_of_main));
    CHECK_OK(gl_destroy(child_of_main));
}

/* ------------------------------------------------------ kept heap copies */

/* An allocator that counts what the engine holds: each block carries its
 * size in front. */
static struct {
    long allocations, blocks;
    size_t bytes;
} held;

static void *counting_allocate(size_t size, void *context)
{
    (void)context;
    size_t *block = malloc(sizeof(size_t) * 2 + size);
    if (!block)
        return NULL;
    block[0] = size;
    held.allocations++;
    held.blocks++;
    held.bytes += size;
    return block + 2;
}

static void counting_release(void *memory, void *context)
{
    (void)context;
    size_t *block = (size_t *)memory - 2;
    held.blocks--;
    held.bytes -= block[0];
    free(block);
}

static void *counting_reallocate(void *memory, size_t size, void *context)
{
    void *moved = counting_allocate(size, context);
    if (moved) {
        size_t old = ((size_t *)memory)[-2];
        memcpy(moved, memory, old < size ? old : size);
        counting_release(memory, context);
    }
    return moved;
}

static size_t held_at_resume;
static gl_greenlet_info info_at_resume;

/* At the bottom of `levels` * 512 bytes of stack: switches home twice, and
 * notes what the engine holds after the first resume. */
static void deep_bottom(const struct frame_link *bottom, void *context)
{
    (void)context;
    CHECK_OK(gl_switch(main_greenlet, (gl_message){NULL, 0}, NULL));
    held_at_resume = held.bytes;
    gl_greenlet_get_info(gl_current(), &info_at_resume);
    check_chain(bottom);
    CHECK_OK(gl_switch(main_greenlet, (gl_message){NULL, 0}, NULL));
}

/* Goes deep, comes back up, and switches home once more from the top. */
static gl_message deep_run(void *argument, gl_message first)
{
    (void)first;
    descend((unsigned)(uintptr_t)argument, 7, NULL, deep_bottom, NULL);
    CHECK_OK(gl_switch(main_greenlet, (gl_message){NULL, 0}, NULL));
    return (gl_message){NULL, 0};
}

/* Runs a greenlet `levels` deep through deep_run; returns what the engine
 * held before its first resume. */
static size_t run_deep(unsigned levels, gl_greenlet **deep)
{
    CHECK_OK(gl_create(deep, deep_run, (void *)(uintptr_t)levels, NULL));
    CHECK_OK(gl_switch(*deep, (gl_message){NULL, 0}, NULL));
    gl_greenlet_info info;
    gl_greenlet_get_info(*deep, &info);
    CHECK(info.saved_bytes > levels * 512);
    size_t before_resume = held.bytes;
    CHECK(before_resume > info.saved_bytes);
    CHECK_OK(gl_switch(*deep, (gl_message){NULL, 0}, NULL));
    return before_resume;
}

/* A greenlet keeps its heap copy once its bytes are back, so a steady
 * ping-pong allocates nothing; copies over 256 KiB are not kept, nor
 * copies much bigger than what a later save needs; a greenlet that
 * finishes frees its copy at once, and its record shows none. */
TEST(heap_copies_are_kept_for_the_next_save_and_freed_at_death)
{
    gl_allocator allocator = {counting_allocate, counting_reallocate,
                              counting_release, NULL};
    gl_set_allocator(&allocator);
    main_greenlet = bounce_home = gl_current();
    gl_greenlet *partner;
    CHECK_OK(gl_create(&partner, bounce, (void *)3, NULL));
    for (int i = 0; i < 3; i++)
        CHECK_OK(gl_switch(partner, (gl_message){NULL, 0}, NULL));
    long allocations = held.allocations;
    for (int i = 0; i < 1000; i++)
        CHECK_OK(gl_switch(partner, (gl_message){NULL, 0}, NULL));
    CHECK_EQ(held.allocations, allocations);
    check_totals();

    long blocks = held.blocks;
    gl_greenlet_info info;
    gl_greenlet_get_info(partner, &info);
    CHECK(info.heap_copy != 0);
    CHECK(info.heap_capacity >= info.saved_bytes);
    CHECK_OK(gl_switch(partner, (gl_message){NULL, 1}, NULL));
    CHECK_EQ(gl_state_of(partner), GL_STATE_DEAD);
    CHECK_EQ(held.blocks, blocks - 1);
    gl_greenlet_get_info(partner, &info);
    CHECK_EQ(info.heap_copy, 0);
    CHECK_EQ(info.heap_capacity, 0);
    CHECK_EQ(info.saved_bytes, 0);
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    CHECK_OK(gl_destroy(partner));

    /* 300 KiB deep: its copy is gone once it runs (main's small one was
     * made meanwhile). */
    gl_greenlet *deep;
    size_t before_resume = run_deep(600, &deep);
    CHECK(held_at_resume < before_resume - 256 * 1024);
    /* 100 KiB deep: its copy is kept while it runs, and cut down when it
     * is saved again from near the top of its stack. */
    gl_greenlet *less_deep;
    run_deep(200, &less_deep);
    CHECK(held_at_resume > 100 * 1024);
    /* Running, with nothing saved: its kept copy shows as heap bytes. */
    CHECK_EQ(info_at_resume.saved_bytes, 0);
    CHECK_EQ(info_at_resume.heap_copy, 0);
    CHECK(info_at_resume.heap_capacity > 100 * 1024);
    CHECK_OK(gl_switch(less_deep, (gl_message){NULL, 0}, NULL));
    gl_greenlet_get_info(less_deep, &info);
    CHECK(info.saved_bytes < 4096);
    /* What the engine holds beyond saved bytes: records, main's copy, and
     * less_deep's, now a few KiB rather than 100. */
    CHECK(held.bytes - gl_thread_saved_bytes() < 48 * 1024);
    CHECK_OK(gl_switch(less_deep, (gl_message){NULL, 0}, NULL));
    CHECK_OK(gl_switch(deep, (gl_message){NULL, 0}, NULL)); /* to the top */
    CHECK_OK(gl_switch(deep, (gl_message){NULL, 0}, NULL));
    gl_greenlet *both[] = {deep, less_deep};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(gl_state_of(both[i]), GL_STATE_DEAD);
        CHECK_OK(gl_destroy(both[i]));
    }
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    gl_set_allocator(NULL);
}
