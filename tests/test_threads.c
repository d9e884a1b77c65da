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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
static gl_greenlet *foreign_finished; /* dead, its thread alive */
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
    CHECK_OK(gl_create(&foreign_finished, bounce, (void *)1, NULL));
    bounce_home = foreign_main;
    CHECK_OK(gl_switch(foreign_finished, (gl_message){NULL, 0}, NULL));
    CHECK_OK(gl_switch(foreign_finished, (gl_message){NULL, 1}, NULL));
    CHECK_EQ(gl_state_of(foreign_finished), GL_STATE_DEAD);
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
    /* Dead or not, its record is its thread's to release while it lives. */
    CHECK_EQ(gl_destroy(foreign_finished), GL_EWRONGTHREAD);
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
    CHECK_OK(gl_kill(foreign_greenlet)); /* dead already: nothing to do */
    CHECK_OK(gl_destroy(foreign_finished));
    CHECK_OK(gl_destroy(foreign_greenlet)); /* last record: thread freed */
    CHECK_OK(gl_destroy(mine));
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 1);
}

/* ------------------------------------------- reading while parents change */

static gl_greenlet *watched;
static atomic_int watching;

static void *read_info_repeatedly(void *argument)
{
    (void)argument;
    while (atomic_load(&watching)) {
        gl_greenlet_info info;
        gl_greenlet_get_info(watched, &info);
        CHECK(info.parent_id != 0);
    }
    return NULL;
}

/* Parents come and go under a reader in another thread: under ASan, any
 * read of a freed parent record fails this test. */
TEST(info_from_another_thread_while_parents_change)
{
    gl_greenlet *main = gl_current();
    CHECK_OK(gl_create(&watched, bounce, NULL, NULL));
    atomic_store(&watching, 1);
    pthread_t reader;
    CHECK(pthread_create(&reader, NULL, read_info_repeatedly, NULL) == 0);
    for (int i = 0; i < 20000; i++) {
        gl_greenlet *parent;
        CHECK_OK(gl_create(&parent, bounce, NULL, NULL));
        CHECK_OK(gl_set_parent(watched, parent));
        CHECK_OK(gl_destroy(parent));
        CHECK_OK(gl_set_parent(watched, main)); /* frees the old parent */
    }
    atomic_store(&watching, 0);
    CHECK(pthread_join(reader, NULL) == 0);
    CHECK_OK(gl_destroy(watched));
}

/* ------------------------------------------------------------------ fork */

static void *hold_a_suspended_greenlet(void *argument)
{
    (void)argument;
    bounce_home = foreign_main = gl_current();
    CHECK_OK(gl_create(&foreign_greenlet, bounce, (void *)3, NULL));
    CHECK_OK(gl_switch(foreign_greenlet, (gl_message){NULL, 0}, NULL));
    set_stage(1);
    wait_for_stage(2); /* stays alive until the test has forked */
    return NULL;
}

/* The child of a fork has only the forking thread: the others' records
 * must read as exited, their greenlets dead and releasable, and the engine
 * usable (the registry lock is held across fork, so it is sane there). */
TEST(fork_child_sees_other_threads_exited)
{
    bounce_home = gl_current();
    pthread_t holder;
    CHECK(pthread_create(&holder, NULL, hold_a_suspended_greenlet, NULL) == 0);
    wait_for_stage(1);
    CHECK(gl_process_saved_bytes() > 0);
    fflush(NULL);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        CHECK_EQ(gl_state_of(foreign_greenlet), GL_STATE_DEAD);
        CHECK_EQ(gl_state_of(foreign_main), GL_STATE_DEAD);
        CHECK_EQ(gl_process_saved_bytes(), 0);
        CHECK_EQ(gl_switch(foreign_greenlet, (gl_message){NULL, 0}, NULL),
                 GL_ETHREADEXITED);
        CHECK_OK(gl_destroy(foreign_greenlet));
        gl_greenlet *g;
        CHECK_OK(gl_create(&g, bounce, (void *)5, NULL));
        CHECK_OK(gl_switch(g, (gl_message){NULL, 0}, NULL));
        CHECK_OK(gl_switch(g, (gl_message){NULL, 1}, NULL));
        CHECK_OK(gl_destroy(g));
        CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 1);
        _exit(0);
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* In the parent nothing changed. */
    CHECK_EQ(gl_state_of(foreign_greenlet), GL_STATE_SUSPENDED);
    set_stage(2);
    CHECK(pthread_join(holder, NULL) == 0);
    CHECK_OK(gl_destroy(foreign_greenlet));
}

/* ----------------------------------------- created here, started there */

static gl_greenlet *traveller;

static int find_thread_of_traveller(const gl_greenlet_info *info,
                                    void *context)
{
    if (info->id == gl_id(traveller))
        *(uint64_t *)context = info->thread_serial;
    return 0;
}

static uint64_t traveller_thread_serial(void)
{
    uint64_t serial = 0;
    gl_registry_walk(NULL, find_thread_of_traveller, &serial);
    return serial;
}

static void *adopt_and_run(void *argument)
{
    (void)argument;
    bounce_home = gl_current();
    CHECK_OK(gl_set_parent(traveller, gl_current())); /* it moves here */
    CHECK(gl_is_mine(traveller));
    gl_greenlet_info mine;
    gl_greenlet_get_info(gl_current(), &mine);
    CHECK_EQ(traveller_thread_serial(), mine.thread_serial);
    gl_message in;
    CHECK_OK(gl_switch(traveller, (gl_message){NULL, 0}, &in));
    CHECK_OK(gl_switch(traveller, (gl_message){NULL, 1}, &in));
    CHECK(in.value == (void *)4);
    CHECK_EQ(gl_state_of(traveller), GL_STATE_DEAD);
    return NULL;
}

TEST(new_greenlet_moves_to_the_thread_of_its_new_parent)
{
    gl_greenlet_info mine;
    gl_greenlet_get_info(gl_current(), &mine);
    CHECK_OK(gl_create(&traveller, bounce, (void *)4, NULL));
    CHECK_EQ(traveller_thread_serial(), mine.thread_serial);
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, adopt_and_run, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    /* Started greenlets never move; neither do greenlets to a parent of a
     * thread other than the caller's. */
    gl_greenlet *started;
    bounce_home = gl_current();
    CHECK_OK(gl_create(&started, bounce, (void *)1, NULL));
    CHECK_OK(gl_switch(started, (gl_message){NULL, 0}, NULL));
    CHECK_EQ(gl_set_parent(started, traveller), GL_EWRONGTHREAD);
    CHECK_OK(gl_destroy(traveller)); /* its thread has exited */
    CHECK_OK(gl_switch(started, (gl_message){NULL, 1}, NULL));
    CHECK_OK(gl_destroy(started));
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 1);
}

/* --------------------------------------------- holding a thread's main */

static gl_greenlet *held_main;

static void *hold_main_and_exit(void *argument)
{
    (void)argument;
    held_main = gl_main();
    gl_hold(held_main);
    return NULL;
}

TEST(held_main_greenlet_outlives_its_thread)
{
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, hold_main_and_exit, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    /* Under ASan, any use of a freed record fails here. */
    CHECK_EQ(gl_state_of(held_main), GL_STATE_DEAD);
    CHECK(gl_is_main(held_main));
    gl_greenlet *g;
    CHECK_OK(gl_create(&g, bounce, NULL, NULL));
    CHECK_EQ(gl_set_parent(g, held_main), GL_EWRONGTHREAD);
    CHECK_OK(gl_destroy(g));
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 2); /* ours, and the held */
    gl_release(held_main);
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 1);
}

/* ------------------------------------ unstarted greenlets of ended threads */

static gl_greenlet *orphan_new;    /* made, never started, by that thread */
static gl_greenlet *orphan_parent; /* its parent: that thread's main */

static void *create_and_exit(void *argument)
{
    (void)argument;
    orphan_parent = gl_main();
    gl_hold(orphan_parent);
    CHECK_OK(gl_create(&orphan_new, bounce, (void *)7, NULL));
    CHECK(!gl_thread_exited(orphan_new)); /* its own thread: alive */
    return NULL;
}

TEST(unstarted_greenlet_outlives_its_thread_and_can_be_adopted)
{
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, create_and_exit, NULL) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    /* It has no stack: it stays NEW, and says its thread is gone. */
    CHECK_EQ(gl_state_of(orphan_new), GL_STATE_NEW);
    CHECK(gl_thread_exited(orphan_new));
    CHECK_EQ(gl_state_of(orphan_parent), GL_STATE_DEAD);
    CHECK(!gl_thread_exited(gl_current()));
    CHECK_EQ(gl_switch(orphan_new, (gl_message){NULL, 0}, NULL),
             GL_ETHREADEXITED);
    /* A parent here moves it here; it runs here, once. */
    bounce_home = gl_current();
    CHECK_OK(gl_set_parent(orphan_new, gl_current()));
    CHECK(gl_is_mine(orphan_new) && !gl_thread_exited(orphan_new));
    CHECK_OK(gl_switch(orphan_new, (gl_message){NULL, 0}, NULL));
    gl_message in;
    CHECK_OK(gl_switch(orphan_new, (gl_message){NULL, 1}, &in));
    CHECK(in.value == (void *)7);
    CHECK_EQ(gl_state_of(orphan_new), GL_STATE_DEAD);
    CHECK_OK(gl_destroy(orphan_new));
    gl_release(orphan_parent);
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 1);
}
