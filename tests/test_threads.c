/*
 * test_threads.c -- greenlets and threads: eight threads each switching
 * their own greenlets at once, the registry walked from another thread
 * meanwhile, switches and reparenting across threads refused, and what a
 * thread's exit does to its greenlets.
 */
#include "glengine.h"
#include "runner.h"
#include "stack_pattern.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define THREADS 8
#define GREENLETS_PER_THREAD 200
#define ROUNDS 50

static atomic_int threads_running;

static void *switch_many(void *argument)
{
    (void)argument;
    gl_greenlet *greenlets[GREENLETS_PER_THREAD];
    bounce_home = gl_current();
    CHECK(bounce_home != NULL && gl_is_main(bounce_home));
    for (uintptr_t i = 0; i < GREENLETS_PER_THREAD; i++)
        CHECK_OK(gl_create(&greenlets[i], bounce, (void *)i, NULL));
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < GREENLETS_PER_THREAD; i++)
            CHECK_OK(gl_switch(greenlets[i], (gl_message){NULL, 0}, NULL));
    for (uintptr_t i = 0; i < GREENLETS_PER_THREAD; i++) {
        gl_message in;
        CHECK_OK(gl_switch(greenlets[i], (gl_message){NULL, 1}, &in));
        CHECK(in.value == (void *)i);
        CHECK_OK(gl_destroy(greenlets[i]));
    }
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    atomic_fetch_sub(&threads_running, 1);
    return NULL;
}

struct walk_tally {
    size_t threads, greenlets;
};

static int tally_thread(const gl_thread_info *thread, void *context)
{
    struct walk_tally *tally = context;
    CHECK(thread->serial > 0);
    CHECK(thread->current_id != 0 || thread->exited);
    tally->threads++;
    return 0;
}

static int tally_greenlet(const gl_greenlet_info *info, void *context)
{
    struct walk_tally *tally = context;
    CHECK(info->id > 0);
    CHECK(info->state <= GL_STATE_DEAD);
    if (info->state == GL_STATE_SUSPENDED)
        CHECK(info->saved_bytes <= info->stack_stop - info->stack_pointer);
    tally->greenlets++;
    return 0;
}

TEST(eight_threads_switch_their_own_greenlets_while_walked)
{
    pthread_t threads[THREADS];
    CHECK(gl_current() != NULL); /* this thread is in the registry too */
    atomic_store(&threads_running, THREADS);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, switch_many, NULL) == 0);
    /* Walk the registry from this thread while the others switch. */
    unsigned walks = 0;
    while (atomic_load(&threads_running) > 0 || walks < 10) {
        struct walk_tally tally = {0, 0};
        size_t visited = gl_registry_walk(tally_thread, tally_greenlet, &tally);
        CHECK_EQ(visited, tally.greenlets);
        CHECK(tally.threads <= THREADS + 1);
        CHECK(tally.greenlets <= THREADS * (GREENLETS_PER_THREAD + 1) + 1);
        (void)gl_process_saved_bytes();
        walks++;
        struct timespec pause = {0, 200 * 1000}; /* let them switch too */
        nanosleep(&pause, NULL);
    }
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK_EQ(gl_process_saved_bytes(), 0);
    /* The threads have exited; only this thread's main remains. */
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 1);
}

/* ------------------------------------------------- across threads: refused */

static gl_greenlet *foreign_greenlet;
static gl_greenlet *foreign_main;
static pthread_mutex_t handoff = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t handoff_changed = PTHREAD_COND_INITIALIZER;
static int handoff_stage;

static void wait_for_stage(int stage)
{
    pthread_mutex_lock(&handoff);
    while (handoff_stage < stage)
        pthread_cond_wait(&handoff_changed, &handoff);
    pthread_mutex_unlock(&handoff);
}

static void set_stage(int stage)
{
    pthread_mutex_lock(&handoff);
    handoff_stage = stage;
    pthread_cond_broadcast(&handoff_changed);
    pthread_mutex_unlock(&handoff);
}

static gl_message yield_once(void *argument, gl_message first)
{
    (void)argument;
    (void)first;
    CHECK_OK(gl_switch(foreign_main, (gl_message){NULL, 0}, NULL));
    return (gl_message){NULL, 0};
}

/* Creates a suspended greenlet, lets the test thread poke at it, and
 * exits, leaving the greenlet behind. */
static void *owner_thread(void *argument)
{
    (void)argument;
    foreign_main = gl_current();
    CHECK_OK(gl_create(&foreign_greenlet, yield_once, NULL, NULL));
    CHECK_OK(gl_switch(foreign_greenlet, (gl_message){NULL, 0}, NULL));
    CHECK(gl_thread_saved_bytes() > 0);
    set_stage(1);
    wait_for_stage(2);
    return NULL;
}

TEST(other_threads_greenlets_are_refused_and_die_with_their_thread)
{
    pthread_t owner;
    CHECK(pthread_create(&owner, NULL, owner_thread, NULL) == 0);
    wait_for_stage(1);
    gl_greenlet *mine;
    CHECK_OK(gl_create(&mine, yield_once, NULL, NULL));
    CHECK(!gl_is_mine(foreign_greenlet));
    CHECK_EQ(gl_switch(foreign_greenlet, (gl_message){NULL, 0}, NULL),
             GL_EWRONGTHREAD);
    CHECK_EQ(gl_switch(foreign_main, (gl_message){NULL, 0}, NULL),
             GL_EWRONGTHREAD);
    CHECK_EQ(gl_set_parent(mine, foreign_greenlet), GL_EWRONGTHREAD);
    CHECK_EQ(gl_set_parent(foreign_greenlet, gl_current()), GL_EWRONGTHREAD);
    CHECK_EQ(gl_set_parent(foreign_greenlet, foreign_main), GL_EWRONGTHREAD);
    CHECK_EQ(gl_create(&mine, yield_once, NULL, foreign_greenlet),
             GL_EWRONGTHREAD);
    CHECK_EQ(gl_kill(foreign_greenlet), GL_EWRONGTHREAD);
    CHECK_EQ(gl_destroy(foreign_greenlet), GL_EWRONGTHREAD);
    CHECK_EQ(gl_state_of(foreign_greenlet), GL_STATE_SUSPENDED);
    CHECK(gl_process_saved_bytes() > 0);

    set_stage(2);
    CHECK(pthread_join(owner, NULL) == 0);
    /* Its thread is gone, so is its stack: the greenlet is dead, its heap
     * copy freed, and its record still valid for its owner to destroy. */
    CHECK_EQ(gl_state_of(foreign_greenlet), GL_STATE_DEAD);
    CHECK_EQ(gl_state_of(foreign_main), GL_STATE_DEAD);
    CHECK_EQ(gl_process_saved_bytes(), 0);
    CHECK_EQ(gl_switch(foreign_greenlet, (gl_message){NULL, 0}, NULL),
             GL_ETHREADEXITED);
    gl_greenlet_info info;
    gl_greenlet_get_info(foreign_greenlet, &info);
    CHECK_EQ(info.saved_bytes, 0);
    CHECK(info.saved_bytes_peak > 0);
    CHECK_OK(gl_destroy(foreign_greenlet)); /* last record: thread freed */
    CHECK_OK(gl_destroy(mine));
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 1);
}
