/*
 * test_model.c -- a randomized test of thousands of create, switch, throw,
 * finish, kill, reparent and destroy operations over many greenlets,
 * checked after every step against a simple model of who runs, who is whose
 * parent, what state each one is in, and what message each one receives.
 *
 * Every greenlet, main included, runs the same agent: it draws the next
 * operation from one shared generator, performs it from a random recursion
 * depth (so stacks overlap in every way, with contents checked by
 * stack_pattern.h), updates the model, and checks the engine against it.
 * A throw, in this test's runtime, kills the greenlet that receives it
 * (unless it is main), which then returns value + 1 to its parent.
 */
#include "glengine.h"
#include "runner.h"
#include "stack_pattern.h"

#include <stdint.h>
#include <string.h>

#define MAX_RECORDS 4000  /* greenlets ever created, main is record 0 */
#define MAX_ALIVE 48      /* not dead at once */
#define STEPS 20000

struct model_record {
    gl_greenlet *greenlet;
    gl_state state;
    int parent;           /* record index; -1 for main */
    int destroyed;
    gl_message expected;  /* what it must receive next */
};

static struct model_record records[MAX_RECORDS];
static int record_count;
static int model_current;
static unsigned generator = 2024;
static long steps_done;

/* How often each kind of event happened, so that the test proves that it
 * exercised them all. */
static struct {
    long creates, switches, throws, finishes, kills, cycles_refused,
        reparents, destroys, deaths_by_throw;
} seen;

static unsigned draw(unsigned bound)
{
    return test_random(&generator) % bound;
}

static int alive_count(void)
{
    int alive = 0;
    for (int i = 0; i < record_count; i++)
        alive += records[i].state != GL_STATE_DEAD;
    return alive;
}

/* A random record that is not dead and not `excluded`; -1 if none. */
static int draw_live_record(int excluded)
{
    int count = 0;
    for (int i = 0; i < record_count; i++)
        count += records[i].state != GL_STATE_DEAD && i != excluded;
    if (count == 0)
        return -1;
    int chosen = (int)draw((unsigned)count);
    for (int i = 0;; i++)
        if (records[i].state != GL_STATE_DEAD && i != excluded && chosen-- == 0)
            return i;
}

static int nearest_live_ancestor(int index)
{
    int a = records[index].parent;
    while (records[a].state == GL_STATE_DEAD)
        a = records[a].parent;
    return a;
}

/* The model of a switch from the current record to `target`, carrying
 * `message`; `finishing` when the current one's run has returned. */
static void model_switch(int target, gl_message message, int finishing)
{
    records[model_current].state =
        finishing ? GL_STATE_DEAD : GL_STATE_SUSPENDED;
    while (message.thrown && target != 0) {
        records[target].expected = message;
        records[target].state = GL_STATE_DEAD; /* it dies of the throw */
        seen.deaths_by_throw++;
        message.value = (void *)((intptr_t)message.value + 1);
        message.thrown = 0;
        target = nearest_live_ancestor(target);
    }
    records[target].state = GL_STATE_RUNNING;
    records[target].expected = message;
    model_current = target;
}

static void check_engine_against_model(int self)
{
    CHECK_EQ(model_current, self);
    CHECK(gl_current() == records[self].greenlet);
    for (int i = 0; i < record_count; i++) {
        if (records[i].destroyed)
            continue;
        gl_greenlet *g = records[i].greenlet;
        if (gl_state_of(g) != records[i].state)
            test_fail(__FILE__, __LINE__,
                      "step %ld: record %d is in state %d, model says %d",
                      steps_done, i, gl_state_of(g), records[i].state);
        gl_greenlet *parent =
            records[i].parent < 0 ? NULL : records[records[i].parent].greenlet;
        CHECK(gl_parent(g) == parent);
    }
}

static void check_received(int self, gl_message received)
{
    if (received.value != records[self].expected.value ||
        received.thrown != records[self].expected.thrown)
        test_fail(__FILE__, __LINE__,
                  "step %ld: record %d received (%ld, %d), expected (%ld, %d)",
                  steps_done, self, (long)(intptr_t)received.value,
                  received.thrown, (long)(intptr_t)records[self].expected.value,
                  records[self].expected.thrown);
}

static gl_message agent_run(void *argument, gl_message first);

/* What the operation at the bottom of the agent's recursion decided. */
struct agent_turn {
    int self;
    int finished;          /* the agent's run must return `result` */
    gl_message result;
};

static gl_message step_message(int thrown)
{
    gl_message m = {(void *)(intptr_t)(steps_done * 4 + 1), thrown};
    return m;
}

static void op_create(struct agent_turn *turn)
{
    if (record_count >= MAX_RECORDS || alive_count() >= MAX_ALIVE)
        return;
    int parent = draw(3) ? draw_live_record(-1) : -1; /* -1: default */
    int index = record_count;
    gl_greenlet *g;
    CHECK_OK(gl_create(&g, agent_run, (void *)(intptr_t)index,
                       parent < 0 ? NULL : records[parent].greenlet));
    record_count++;
    seen.creates++;
    records[index].greenlet = g;
    records[index].state = GL_STATE_NEW;
    records[index].parent = parent < 0 ? turn->self : parent;
    records[index].destroyed = 0;
}

static void op_switch(struct agent_turn *turn, int thrown)
{
    int target = draw_live_record(turn->self);
    if (target < 0)
        return;
    gl_message out = step_message(thrown), in;
    thrown ? seen.throws++ : seen.switches++;
    model_switch(target, out, 0);
    CHECK_OK(gl_switch(records[target].greenlet, out, &in));
    check_received(turn->self, in);
    if (in.thrown && turn->self != 0) {
        turn->finished = 1;
        turn->result.value = (void *)((intptr_t)in.value + 1);
        turn->result.thrown = 0;
    }
}

static void op_finish(struct agent_turn *turn)
{
    if (turn->self == 0)
        return;
    turn->finished = 1;
    turn->result = step_message(0);
    seen.finishes++;
}

static void op_kill(struct agent_turn *turn)
{
    int victim = draw_live_record(turn->self);
    if (victim <= 0)
        return;
    if (records[victim].state == GL_STATE_RUNNING)
        return;
    CHECK_OK(gl_kill(records[victim].greenlet));
    records[victim].state = GL_STATE_DEAD;
    seen.kills++;
}

static int model_is_ancestor(int ancestor, int index)
{
    for (int a = index; a >= 0; a = records[a].parent)
        if (a == ancestor)
            return 1;
    return 0;
}

static void op_set_parent(struct agent_turn *turn)
{
    (void)turn;
    if (record_count < 2)
        return;
    int child = 1 + (int)draw((unsigned)record_count - 1);
    int parent = (int)draw((unsigned)record_count);
    if (draw(2)) { /* aim at a cycle: a descendant of child, or itself */
        int count = 0;
        for (int i = 0; i < record_count; i++)
            count += model_is_ancestor(child, i);
        int chosen = (int)draw((unsigned)count);
        for (parent = 0; !model_is_ancestor(child, parent) || chosen-- > 0;)
            parent++;
    }
    if (records[child].destroyed || records[parent].destroyed)
        return;
    int error = gl_set_parent(records[child].greenlet,
                              records[parent].greenlet);
    if (model_is_ancestor(child, parent)) {
        CHECK_EQ(error, GL_ECYCLE);
        seen.cycles_refused++;
    } else {
        CHECK_OK(error);
        records[child].parent = parent;
        seen.reparents++;
    }
}

static void op_destroy(struct agent_turn *turn)
{
    (void)turn;
    if (record_count < 2)
        return;
    int index = 1 + (int)draw((unsigned)record_count - 1);
    if (records[index].destroyed || records[index].state != GL_STATE_DEAD)
        return;
    CHECK_OK(gl_destroy(records[index].greenlet));
    records[index].destroyed = 1;
    seen.destroys++;
}

static void take_turn(const struct frame_link *bottom, void *context)
{
    struct agent_turn *turn = context;
    unsigned roll = draw(100);
    if (roll < 12)
        op_create(turn);
    else if (roll < 60)
        op_switch(turn, 0);
    else if (roll < 68)
        op_switch(turn, 1);
    else if (roll < 78)
        op_finish(turn);
    else if (roll < 84)
        op_kill(turn);
    else if (roll < 92)
        op_set_parent(turn);
    else
        op_destroy(turn);
    check_chain(bottom);
}

/* Runs turns until this agent must return (a finish or a fatal throw), or
 * the steps are used up. */
static gl_message agent_loop(int self)
{
    for (;;) {
        if (steps_done >= STEPS) {
            if (self == 0)
                return step_message(0);
            gl_message out = step_message(0), in;
            model_switch(0, out, 0);
            CHECK_OK(gl_switch(records[0].greenlet, out, &in));
            continue; /* main never switches back after the end */
        }
        steps_done++;
        struct agent_turn turn = {self, 0, {NULL, 0}};
        descend(draw(12), (unsigned)steps_done, NULL, take_turn, &turn);
        if (turn.finished) {
            /* What the engine does once we return, the model does now. */
            model_switch(nearest_live_ancestor(self), turn.result, 1);
            return turn.result;
        }
        check_engine_against_model(self);
    }
}

static gl_message agent_run(void *argument, gl_message first)
{
    int self = (int)(intptr_t)argument;
    check_received(self, first);
    if (first.thrown) {
        gl_message result = {(void *)((intptr_t)first.value + 1), 0};
        return result; /* the model already counted this death */
    }
    check_engine_against_model(self);
    return agent_loop(self);
}

TEST(random_operations_match_the_model)
{
    memset(records, 0, sizeof records);
    records[0].greenlet = gl_current();
    records[0].state = GL_STATE_RUNNING;
    records[0].parent = -1;
    record_count = 1;
    model_current = 0;
    agent_loop(0);
    CHECK_EQ(steps_done, STEPS);
    CHECK(seen.creates >= 400 && seen.switches >= 5000 && seen.throws >= 500);
    CHECK(seen.finishes >= 300 && seen.kills >= 50 && seen.destroys >= 100);
    CHECK(seen.cycles_refused >= 20 && seen.reparents >= 100);
    CHECK(seen.deaths_by_throw >= 100);
    check_engine_against_model(0);
    for (int i = 1; i < record_count; i++) {
        if (records[i].destroyed)
            continue;
        CHECK_OK(gl_destroy(records[i].greenlet));
    }
    CHECK_EQ(gl_thread_saved_bytes(), 0);
    CHECK_EQ(gl_registry_walk(NULL, NULL, NULL), 1); /* main alone */
}
