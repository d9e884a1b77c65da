/*
 * test_stress_copies.c -- the heap copies under random load, checked from
 * the inside: ten greenlets switch among themselves from recursion depths
 * drawn in 16-byte steps (so stacks overlap in every way, saved parts
 * smaller than the switch frame included), now and then 300 KiB deep (heap
 * copies too big to keep), with switches failing for lack of memory,
 * greenlets destroyed by others and from the observe hook, and greenlets
 * finishing. After every step the engine's own records must add up: saved
 * bytes to the thread's total, capacities to what the allocator holds
 * (records and copies, nothing else), no copy for a dead greenlet, nothing
 * saved for the running one; every stack byte is checked after every
 * resume; and the allocator refuses realloc and any block freed without
 * being zeroed (the hazard audit relies on scrubbing).
 *
 * White-box: it reads engine.h's records. Written first as a review's
 * stress program; each test runs it in a thread of its own, so that the
 * thread's record is made and freed under the counting allocator.
 */
#include "engine.h"
#include "runner.h"
#include "stack_pattern.h"

#include <alloca.h>
#include <pthread.h>
#include <string.h>

#define AGENTS 10
#define STEPS 20000
#define OVERSIZE_BYTES (300 * 1024) /* over the engine's KEEP_LIMIT */

static unsigned generator;

static unsigned draw(unsigned bound)
{
    return test_random(&generator) % bound;
}

/* ------------------------------------------------------------ allocator */

static struct {
    long blocks, fail_in;
    size_t bytes;
} held;

struct block_header {
    size_t size;
    size_t magic;
};
enum { BLOCK_MAGIC = 0x5ca1ab1e };

static void *checked_allocate(size_t size, void *context)
{
    (void)context;
    if (held.fail_in > 0 && --held.fail_in == 0)
        return NULL;
    struct block_header *header = malloc(sizeof *header + size);
    if (!header)
        return NULL;
    header->size = size;
    header->magic = BLOCK_MAGIC;
    memset(header + 1, 0xa5, size); /* not zero: scrubbing must be real */
    held.blocks++;
    held.bytes += size;
    return header + 1;
}

static void checked_release(void *memory, void *context)
{
    (void)context;
    if (!memory)
        return;
    struct block_header *header = (struct block_header *)memory - 1;
    CHECK(header->magic == BLOCK_MAGIC);
    const unsigned char *bytes = memory;
    for (size_t i = 0; i < header->size; i++)
        if (bytes[i])
            test_fail(__FILE__, __LINE__,
                      "a block of %zu bytes freed unzeroed (byte %zu)",
                      header->size, i);
    held.blocks--;
    held.bytes -= header->size;
    header->magic = 0;
    free(header);
}

static void *refused_reallocate(void *memory, size_t size, void *context)
{
    (void)memory;
    (void)size;
    (void)context;
    test_fail(__FILE__, __LINE__, "realloc used: a moved block keeps "
                                  "stack bytes unzeroed");
}

/* ------------------------------------------------------------- the agents */

static gl_greenlet *agents[AGENTS]; /* 0 is the thread's main greenlet */
static int finishing[AGENTS];
static gl_greenlet *finished[STEPS];
static int finished_count;
static long steps;
/* What happened, so that the test proves it exercised it. */
static long seen_small_saved, seen_oversize, seen_failures, seen_hook_kills,
    seen_kills, seen_finishes;

static void check_records(void)
{
    gl__thread *thread = gl__this_thread_record;
    size_t saved = 0, capacities = 0, records = 0;
    for (gl_greenlet *g = thread->first_greenlet; g; g = g->thread_next) {
        saved += g->saved_bytes;
        CHECK(g->heap_capacity >= g->saved_bytes);
        CHECK((g->heap_copy == NULL) == (g->heap_capacity == 0));
        CHECK(g->new_copy == NULL);
        if (g->state == GL_STATE_RUNNING)
            CHECK_EQ(g->saved_bytes, 0);
        if (g->state == GL_STATE_DEAD)
            CHECK(g->heap_copy == NULL);
        if (g->saved_bytes > 0 && g->saved_bytes < GL__SWITCH_FRAME_BYTES)
            seen_small_saved++;
        if (g->heap_capacity > OVERSIZE_BYTES / 2)
            seen_oversize++;
        capacities += g->heap_capacity;
        records += !g->is_main;
    }
    CHECK_EQ(saved, thread->saved_bytes);
    CHECK_EQ(held.bytes,
             sizeof(gl__thread) + records * sizeof(gl_greenlet) + capacities);
}

static gl_message agent_run(void *argument, gl_message first);

static void destroy_finished(void)
{
    while (finished_count > 0) {
        gl_greenlet *g = finished[--finished_count];
        CHECK_EQ(gl_state_of(g), GL_STATE_DEAD);
        CHECK_OK(gl_destroy(g));
    }
}

/* One step, from wherever the agent `self` has recursed to. */
static void step(int self)
{
    check_records();
    if (++steps >= STEPS) {
        if (self != 0) /* home, to be destroyed there */
            CHECK_OK(gl_switch(agents[0], (gl_message){NULL, 0}, NULL));
        return;
    }
    unsigned what = draw(100);
    if (what < 75) {
        int to = (int)draw(AGENTS);
        if (to == self)
            return;
        if (!agents[to])
            CHECK_OK(gl_create(&agents[to], agent_run, (void *)(intptr_t)to,
                               NULL));
        size_t saved_before = gl_thread_saved_bytes();
        if (draw(10) == 0)
            held.fail_in = 1 + draw(3);
        int error = gl_switch(agents[to], (gl_message){NULL, 0}, NULL);
        held.fail_in = 0;
        if (error) {
            CHECK_EQ(error, GL_ENOMEM);
            CHECK_EQ(gl_thread_saved_bytes(), saved_before);
            seen_failures++;
        }
        CHECK(gl_current() == agents[self]);
        check_records();
    } else if (what < 85) {
        int victim = (int)draw(AGENTS);
        if (victim == 0 || victim == self || !agents[victim])
            return;
        gl_greenlet *g = agents[victim];
        agents[victim] = NULL;
        CHECK_OK(gl_destroy(g));
        seen_kills++;
        check_records();
    } else if (what < 88 && self != 0) {
        finishing[self] = 1;
    }
}

static __attribute__((noinline)) void fill(unsigned char *bytes, size_t size,
                                          unsigned seed)
{
    for (size_t i = 0; i < size; i++)
        bytes[i] = (unsigned char)(seed + i * 7);
}

static __attribute__((noinline)) void verify(const unsigned char *bytes,
                                            size_t size, unsigned seed)
{
    for (size_t i = 0; i < size; i++)
        if (bytes[i] != (unsigned char)(seed + i * 7))
            test_fail(__FILE__, __LINE__, "stack byte %zu of %zu changed",
                      i, size);
}

/* Recurses `levels` times, each level holding 16 to 640 bytes (rarely
 * 300 KiB) of a pattern checked on the way out, then steps. */
static void act(int self, int levels)
{
    if ((finishing[self] || steps >= STEPS) && (self == 0 || steps < STEPS))
        return;
    if (levels == 0) {
        step(self);
        return;
    }
    size_t size = 16 * (1 + draw(40));
    if (draw(300) == 0)
        size = OVERSIZE_BYTES;
    unsigned char *bytes = alloca(size);
    unsigned seed = draw(1u << 30);
    fill(bytes, size, seed);
    act(self, levels - 1);
    verify(bytes, size, seed);
}

static gl_message agent_run(void *argument, gl_message first)
{
    int self = (int)(intptr_t)argument;
    CHECK(agents[self] == gl_current());
    while (!finishing[self] && steps < STEPS)
        act(self, (int)draw(6));
    if (steps >= STEPS) /* wait at home to be destroyed */
        for (;;)
            CHECK_OK(gl_switch(agents[0], (gl_message){NULL, 0}, NULL));
    finishing[self] = 0;
    seen_finishes++;
    finished[finished_count++] = agents[self];
    agents[self] = NULL;
    return first;
}

/* ----------------------------------------------------------------- hooks */

static void save_nothing(gl_greenlet *origin, void *context)
{
    (void)origin;
    (void)context;
}

/* A failure armed for one switch ends with it: the greenlet that resumes
 * is not the one that armed it. */
static void disarm_failures(gl_greenlet *target, void *context)
{
    (void)target;
    (void)context;
    held.fail_in = 0;
}

/* Now and then destroys a suspended greenlet from inside the arrive step. */
static void destroy_someone(gl_greenlet *origin, gl_greenlet *target,
                            int thrown, void *context)
{
    (void)origin;
    (void)thrown;
    (void)context;
    if (draw(8))
        return;
    int victim = (int)draw(AGENTS);
    if (victim == 0 || !agents[victim] || agents[victim] == target ||
        gl_state_of(agents[victim]) != GL_STATE_SUSPENDED)
        return;
    gl_greenlet *g = agents[victim];
    agents[victim] = NULL;
    CHECK_OK(gl_destroy(g));
    seen_hook_kills++;
}

/* ------------------------------------------------------------ the runs */

struct run_settings {
    unsigned seed;
    int save_hook;
};

static void *run_agents(void *argument)
{
    const struct run_settings *settings = argument;
    generator = settings->seed;
    gl_allocator allocator = {checked_allocate, refused_reallocate,
                              checked_release, NULL};
    gl_set_allocator(&allocator);
    gl_runtime_hooks hooks = {settings->save_hook ? save_nothing : NULL,
                              disarm_failures, destroy_someone, NULL};
    gl_set_runtime_hooks(&hooks);
    agents[0] = gl_current();
    while (steps < STEPS) {
        act(0, (int)draw(6));
        destroy_finished();
    }
    for (int i = 1; i < AGENTS; i++)
        if (agents[i])
            CHECK_OK(gl_destroy(agents[i]));
    destroy_finished();
    check_records();
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    return NULL;
}

/* Runs the agents in a thread with room for the deep levels; everything
 * the engine held must be given back once the thread has exited. */
static void run_in_a_thread(struct run_settings settings)
{
    pthread_attr_t attributes;
    pthread_t thread;
    CHECK(pthread_attr_init(&attributes) == 0);
    CHECK(pthread_attr_setstacksize(&attributes, 32u << 20) == 0);
    CHECK(pthread_create(&thread, &attributes, run_agents, &settings) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK_EQ(held.blocks, 0);
    CHECK_EQ(held.bytes, 0);
    CHECK(seen_small_saved > 0 && seen_oversize > 0 && seen_failures > 0);
    CHECK(seen_kills > 0 && seen_finishes > 0);
    gl_set_allocator(NULL);
}

/* The save step's short path: no save_state hook. */
TEST(heap_copies_add_up_under_random_load)
{
    run_in_a_thread((struct run_settings){1, 0});
    CHECK(seen_hook_kills > 0);
}

/* The save step's general path, which a save_state hook forces. */
TEST(heap_copies_add_up_under_random_load_with_hooks)
{
    run_in_a_thread((struct run_settings){2, 1});
    CHECK(seen_hook_kills > 0);
}
