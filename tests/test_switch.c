/*
 * test_switch.c -- switching and values: ping-pong, what each side
 * receives, return to the parent, nested parents, throws as flags, and the
 * runtime hooks seeing every switch.
 */
#include "glengine.h"
#include "runner.h"

#include <string.h>

static gl_message message(long value, int thrown)
{
    gl_message m = {(void *)value, thrown};
    return m;
}

static gl_message echo_plus_one(void *argument, gl_message first)
{
    gl_greenlet *partner = argument;
    long value = (long)first.value;
    for (;;) {
        gl_message in;
        CHECK_OK(gl_switch(partner, message(value + 1, 0), &in));
        if (in.thrown)
            return message(-value, 0);
        value = (long)in.value;
    }
}

TEST(ping_pong)
{
    gl_greenlet *main = gl_current(), *child;
    CHECK(main != NULL);
    CHECK(gl_is_main(main));
    CHECK_EQ(gl_state_of(main), GL_STATE_RUNNING);
    CHECK_OK(gl_create(&child, echo_plus_one, main, NULL));
    CHECK_EQ(gl_state_of(child), GL_STATE_NEW);
    CHECK(gl_parent(child) == main);
    CHECK(gl_id(child) > gl_id(main));
    for (long i = 0; i < 100000; i++) {
        gl_message in;
        CHECK_OK(gl_switch(child, message(i, 0), &in));
        CHECK_EQ((long)in.value, i + 1);
        CHECK_EQ(in.thrown, 0);
        CHECK(gl_current() == main);
        CHECK_EQ(gl_state_of(child), GL_STATE_SUSPENDED);
    }
    gl_message in;
    CHECK_OK(gl_switch(child, message(7, 1), &in));
    CHECK_EQ((long)in.value, -99999);
    CHECK_EQ(gl_state_of(child), GL_STATE_DEAD);
    CHECK_OK(gl_destroy(child));
}

TEST(switch_to_self_returns_the_message)
{
    gl_message in;
    CHECK_OK(gl_switch(gl_current(), message(42, 1), &in));
    CHECK_EQ((long)in.value, 42);
    CHECK_EQ(in.thrown, 1);
}

static gl_message return_argument(void *argument, gl_message first)
{
    (void)first;
    return message((long)argument, 0);
}

TEST(run_return_goes_to_parent_and_kills)
{
    gl_greenlet *g;
    CHECK_OK(gl_create(&g, return_argument, (void *)5L, NULL));
    gl_message in;
    CHECK_OK(gl_switch(g, message(0, 0), &in));
    CHECK_EQ((long)in.value, 5);
    CHECK_EQ(gl_state_of(g), GL_STATE_DEAD);
    CHECK_EQ(gl_switch(g, message(0, 0), &in), GL_EDEAD);
    CHECK_OK(gl_destroy(g));
}

/* Each level creates a child of itself, switches to it, and adds its own
 * level to what the child returns: results climb back through the parents
 * without ever switching explicitly upwards. */
static gl_message nest(void *argument, gl_message first)
{
    long level = (long)argument;
    (void)first;
    if (level == 0)
        return message(0, 0);
    gl_greenlet *child;
    CHECK_OK(gl_create(&child, nest, (void *)(level - 1), NULL));
    CHECK(gl_parent(child) == gl_current());
    gl_message in;
    CHECK_OK(gl_switch(child, message(0, 0), &in));
    CHECK_EQ(gl_state_of(child), GL_STATE_DEAD);
    CHECK_OK(gl_destroy(child));
    return message((long)in.value + level, 0);
}

TEST(nested_parents_return_in_order)
{
    gl_greenlet *top;
    CHECK_OK(gl_create(&top, nest, (void *)50L, NULL));
    gl_message in;
    CHECK_OK(gl_switch(top, message(0, 0), &in));
    CHECK_EQ((long)in.value, 50 * 51 / 2);
    CHECK_OK(gl_destroy(top));
}

TEST(dead_parent_hands_result_to_nearest_live_ancestor)
{
    gl_greenlet *a, *b, *c;
    CHECK_OK(gl_create(&a, return_argument, (void *)1L, NULL));
    CHECK_OK(gl_create(&b, return_argument, (void *)2L, a));
    CHECK_OK(gl_create(&c, return_argument, (void *)3L, b));
    gl_message in;
    CHECK_OK(gl_switch(a, message(0, 0), &in)); /* a dies, back to main */
    CHECK_EQ((long)in.value, 1);
    CHECK_OK(gl_kill(b));                       /* b dies without running */
    CHECK_EQ(gl_state_of(b), GL_STATE_DEAD);
    CHECK_OK(gl_destroy(b)); /* c still names b: the record stays usable */
    CHECK_OK(gl_switch(c, message(0, 0), &in)); /* c's result skips a, b */
    CHECK_EQ((long)in.value, 3);
    CHECK(gl_current() == gl_main());
    CHECK_OK(gl_destroy(c));
    CHECK_OK(gl_destroy(a));
}

static gl_message return_first(void *argument, gl_message first)
{
    (void)argument;
    return first;
}

TEST(new_parent_is_started_by_childs_result)
{
    gl_greenlet *parent, *child;
    CHECK_OK(gl_create(&parent, return_first, NULL, NULL));
    CHECK_OK(gl_create(&child, return_argument, (void *)77L, parent));
    gl_message in;
    CHECK_OK(gl_switch(child, message(0, 0), &in));
    /* child returned 77 into the unstarted parent, which returned it. */
    CHECK_EQ((long)in.value, 77);
    CHECK_EQ(gl_state_of(parent), GL_STATE_DEAD);
    CHECK_OK(gl_destroy(child));
    CHECK_OK(gl_destroy(parent));
}

TEST(throw_flag_travels_to_new_greenlet)
{
    gl_greenlet *g;
    CHECK_OK(gl_create(&g, return_first, NULL, NULL));
    gl_message in;
    CHECK_OK(gl_switch(g, message(9, 1), &in));
    CHECK_EQ((long)in.value, 9);
    CHECK_EQ(in.thrown, 1);
    CHECK_OK(gl_destroy(g));
}

/* ----------------------------------------------------------------- hooks */

struct hook_log {
    int saves, restores, observes;
    gl_greenlet *last_origin, *last_target;
    int last_thrown;
    char order[64];
    size_t order_length;
};

static void log_event(struct hook_log *log, char event)
{
    if (log->order_length + 1 < sizeof log->order)
        log->order[log->order_length++] = event;
}

static void on_save(gl_greenlet *origin, void *context)
{
    struct hook_log *log = context;
    CHECK(origin == gl_current());
    log->saves++;
    log_event(log, 's');
}

static void on_restore(gl_greenlet *target, void *context)
{
    struct hook_log *log = context;
    CHECK(target == gl_current());
    log->restores++;
    log_event(log, 'r');
}

static void on_observe(gl_greenlet *origin, gl_greenlet *target, int thrown,
                       void *context)
{
    struct hook_log *log = context;
    log->observes++;
    log->last_origin = origin;
    log->last_target = target;
    log->last_thrown = thrown;
    log_event(log, 'o');
}

TEST(hooks_bracket_every_switch)
{
    struct hook_log log;
    memset(&log, 0, sizeof log);
    gl_runtime_hooks hooks = {on_save, on_restore, on_observe, &log};
    gl_set_runtime_hooks(&hooks);
    gl_greenlet *main = gl_current(), *child;
    CHECK_OK(gl_create(&child, echo_plus_one, main, NULL));
    gl_message in;
    CHECK_OK(gl_switch(child, message(1, 0), &in)); /* start, back */
    CHECK_EQ(log.saves, 2);
    CHECK_EQ(log.restores, 2);
    CHECK_EQ(log.observes, 2);
    CHECK(log.last_origin == child && log.last_target == main);
    CHECK_OK(gl_switch(child, message(1, 1), &in)); /* throw: it returns */
    CHECK_EQ(log.saves, 4);
    CHECK(log.last_origin == child && log.last_target == main);
    CHECK_EQ(log.last_thrown, 0);
    CHECK(strcmp(log.order, "srosrosrosro") == 0);
    gl_set_runtime_hooks(NULL);
    CHECK_OK(gl_switch(main, message(0, 0), &in)); /* to self: no hooks */
    CHECK_EQ(log.saves, 4);
    CHECK_OK(gl_destroy(child));
}

TEST(error_names_and_messages)
{
    CHECK(strcmp(gl_error_name(0), "GL_OK") == 0);
    CHECK(strcmp(gl_error_name(GL_ENOMEM), "GL_ENOMEM") == 0);
    CHECK(strcmp(gl_error_name(GL_ECYCLE), "GL_ECYCLE") == 0);
    CHECK(strcmp(gl_error_name(12345), "GL_EUNKNOWN") == 0);
    CHECK(strcmp(gl_strerror(GL_EDEAD), "the greenlet is dead") == 0);
    CHECK(strcmp(gl_strerror(0), "success") == 0);
    CHECK(gl_strerror(-999) != NULL);
}
