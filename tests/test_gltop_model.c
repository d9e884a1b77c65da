/*
 * test_gltop_model.c -- gltop's model (gltop/model.c) without a terminal:
 * the tree and flat orders, sorting, filtering that keeps ancestors,
 * switch rates and idle times from two samples, the B and H flags, and
 * odd trees (parents missing, or in a cycle). Snapshots are parsed from images built by gltop_snapshots.c.
 * Native builds only (GL_TEST_HAVE_INSPECT), like the monitor tests.
 */
#ifdef GL_TEST_HAVE_INSPECT
#include "gltop_snapshots.h"
#include "model.h"
#include "monitor_layout.h"
#include "runner.h"

#include <stdlib.h>
#include <string.h>

/* The ids of the rows, and their depths, as "id:depth id:depth ...". */
static const char *rows_of(const gltop_model *model)
{
    static char text[512];
    size_t used = 0;
    text[0] = '\0';
    for (size_t i = 0; i < gltop_model_row_count(model); i++) {
        const gltop_row *row = gltop_model_row(model, i);
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%llu:%u",
                                 i ? " " : "",
                                 (unsigned long long)row->greenlet->id,
                                 row->depth);
    }
    return text;
}

#define CHECK_ROWS(model, expected)                                           \
    do {                                                                      \
        const char *rows_ = rows_of(model);                                   \
        if (strcmp(rows_, expected) != 0)                                     \
            test_fail(__FILE__, __LINE__, "rows \"%s\", expected \"%s\"",     \
                      rows_, expected);                                       \
    } while (0)

/*   1 main
 *     2 hub                 (saved 0)
 *       5 handler  recv     (saved 900)
 *       4 handler  recv     (saved 300)
 *     3 worker     compute  (saved 600)
 *       6 child    sleep    (saved 100) */
static const struct spec server[] = {
    {1, 0, GL_STATE_RUNNING, 10, 0, "main"},
    {2, 1, GL_STATE_SUSPENDED, 50, 0, "hub_loop"},
    {3, 1, GL_STATE_SUSPENDED, 5, 600, "compute"},
    {4, 2, GL_STATE_SUSPENDED, 7, 300, "recv"},
    {5, 2, GL_STATE_SUSPENDED, 9, 900, "recv"},
    {6, 3, GL_STATE_NEW, 0, 100, "sleep"},
};

TEST(gltop_model_orders_a_tree_and_a_flat_view)
{
    gltop_model *model;
    CHECK_OK(gltop_model_create(&model));
    CHECK_EQ(gltop_model_row_count(model), 0);
    CHECK_OK(gltop_model_update(model, snapshot_of(server, 6), 1000, NULL));
    CHECK_ROWS(model, "1:0 2:1 4:2 5:2 3:1 6:2");
    CHECK_OK(gltop_model_set_sort(model, GLTOP_COLUMN_HEAP, 1));
    CHECK_ROWS(model, "1:0 3:1 6:2 2:1 5:2 4:2"); /* siblings by heap */
    CHECK_OK(gltop_model_set_tree(model, 0));
    CHECK_ROWS(model, "5:0 3:0 4:0 6:0 1:0 2:0"); /* ties by id */
    CHECK_OK(gltop_model_set_sort(model, GLTOP_COLUMN_STATE, 0));
    CHECK_ROWS(model, "6:0 1:0 2:0 3:0 4:0 5:0");
    CHECK_OK(gltop_model_set_sort(model, GLTOP_COLUMN_WHERE, 0));
    CHECK_ROWS(model, "3:0 2:0 1:0 4:0 5:0 6:0");
    CHECK_OK(gltop_model_set_sort(model, GLTOP_COLUMN_ID, 1));
    CHECK_ROWS(model, "6:0 5:0 4:0 3:0 2:0 1:0");
    CHECK_EQ(gltop_model_set_sort(model, GLTOP_COLUMNS, 0), GL_EINVAL);
    gltop_model_destroy(model);
}

TEST(gltop_model_filter_keeps_the_ancestors_of_what_it_finds)
{
    gltop_model *model;
    CHECK_OK(gltop_model_create(&model));
    CHECK_OK(gltop_model_update(model, snapshot_of(server, 6), 1000, NULL));
    CHECK_OK(gltop_model_set_filter(model, "recv"));
    CHECK_ROWS(model, "1:0 2:1 4:2 5:2");
    CHECK_OK(gltop_model_set_filter(model, "sle"));
    CHECK_ROWS(model, "1:0 3:1 6:2");
    CHECK_OK(gltop_model_set_tree(model, 0));
    CHECK_ROWS(model, "6:0");
    CHECK_OK(gltop_model_set_filter(model, "nothing like it"));
    CHECK_ROWS(model, "");
    /* What is filtered out is still there for the detail pane, and in
     * the totals. */
    gltop_row row;
    CHECK(gltop_model_greenlet(model, 3, &row));
    CHECK_EQ(row.greenlet->id, 3);
    CHECK_EQ(row.greenlet->saved_bytes, 600);
    CHECK(!gltop_model_greenlet(model, 42, &row));
    gltop_totals totals;
    gltop_model_totals(model, &totals);
    CHECK_EQ(totals.alive, 6);
    CHECK_EQ(totals.by_state[GL_STATE_SUSPENDED], 4);
    CHECK_EQ(totals.by_state[GL_STATE_NEW], 1);
    CHECK_EQ(totals.blocking, 0);
    CHECK_OK(gltop_model_set_filter(model, ""));
    CHECK_EQ(gltop_model_row_count(model), 6);
    gltop_model_destroy(model);
}

TEST(gltop_model_rates_and_idle_times_come_from_two_samples)
{
    gltop_model *model;
    CHECK_OK(gltop_model_create(&model));
    CHECK_OK(gltop_model_update(model, snapshot_of(server, 6), 1000000000, NULL));
    CHECK(gltop_model_process_rate(model) < 0); /* one sample: unknown */
    CHECK(gltop_model_row(model, 1)->switches_per_second < 0);
    CHECK_EQ(gltop_model_row(model, 1)->idle_ns, UINT64_MAX);
    CHECK_EQ(gltop_model_row(model, 0)->idle_ns, 0); /* running */

    struct spec later[6];
    memcpy(later, server, sizeof later);
    later[1].switches += 100; /* the hub ran 100 times in half a second */
    later[4].switches += 1;
    CHECK_OK(gltop_model_update(model, snapshot_of(later, 6), 1500000000, NULL));
    CHECK_ROWS(model, "1:0 2:1 4:2 5:2 3:1 6:2");
    CHECK(gltop_model_row(model, 1)->switches_per_second == 200.0);
    CHECK(gltop_model_row(model, 3)->switches_per_second == 2.0);
    CHECK(gltop_model_row(model, 2)->switches_per_second == 0.0);
    CHECK(gltop_model_process_rate(model) == 202.0);
    CHECK_OK(gltop_model_set_tree(model, 0));
    CHECK_OK(gltop_model_set_sort(model, GLTOP_COLUMN_RATE, 1));
    CHECK_ROWS(model, "2:0 5:0 1:0 3:0 4:0 6:0"); /* ties by id */
    CHECK_OK(gltop_model_set_sort(model, GLTOP_COLUMN_IDLE, 0));
    CHECK_ROWS(model, "1:0 2:0 5:0 3:0 4:0 6:0"); /* unknown idle last */
    CHECK_OK(gltop_model_set_sort(model, GLTOP_COLUMN_ID, 0));
    CHECK_OK(gltop_model_set_tree(model, 1));
    CHECK_EQ(gltop_model_row(model, 1)->idle_ns, 0);
    CHECK_EQ(gltop_model_row(model, 2)->idle_ns, UINT64_MAX);

    /* A second later, nothing ran: idle times grow from when each was
     * last seen running; a greenlet that is gone is simply not there. */
    CHECK_OK(gltop_model_update(model, snapshot_of(later, 5), 2500000000, NULL));
    CHECK_EQ(gltop_model_row(model, 1)->idle_ns, 1000000000);
    CHECK_EQ(gltop_model_row(model, 3)->idle_ns, 1000000000);
    CHECK_EQ(gltop_model_row_count(model), 5);
    CHECK_OK(gltop_model_set_sort(model, GLTOP_COLUMN_RATE, 1));
    CHECK_OK(gltop_model_set_tree(model, 0));
    CHECK_EQ(gltop_model_row(model, 0)->greenlet->id, 1); /* all 0: by id */
    gltop_model_destroy(model);
}

TEST(gltop_model_shows_odd_trees_once_each)
{
    /* 10's parent is not in the snapshot; 20 and 21 are each other's
     * parent (only a hostile segment says so). */
    static const struct spec odd[] = {
        {10, 99, GL_STATE_SUSPENDED, 1, 0, "orphan"},
        {11, 10, GL_STATE_SUSPENDED, 1, 0, "child"},
        {20, 21, GL_STATE_SUSPENDED, 1, 0, "loop"},
        {21, 20, GL_STATE_SUSPENDED, 1, 0, "loop"},
    };
    gltop_model *model;
    CHECK_OK(gltop_model_create(&model));
    CHECK_OK(gltop_model_update(model, snapshot_of(odd, 4), 1, NULL));
    CHECK_ROWS(model, "10:0 11:1 20:0 21:1");
    CHECK_OK(gltop_model_set_filter(model, "loop"));
    CHECK_ROWS(model, "20:0 21:1");
    gltop_model_destroy(model);
}
TEST(gltop_model_flags_a_busy_thread_that_stops_switching_and_hazards)
{
    static const struct spec spinning[] = {
        {1, 0, GL_STATE_SUSPENDED, 3, 0, "main"},
        {2, 1, GL_STATE_RUNNING, 1, 0, "spin"},
        {3, 1, GL_STATE_SUSPENDED, 1, 500, "held", GL_MONITOR_GREENLET_HAZARD},
    };
    const uint64_t second = 1000000000;
    const double busy[1] = {0.97}, asleep[1] = {0.02};
    gltop_model *model;
    CHECK_OK(gltop_model_create(&model));
    gltop_model_set_block_threshold(model, second);
    /* At first nothing is known to have lasted. */
    CHECK_OK(gltop_model_update(model, snapshot_of(spinning, 3), 0, busy));
    CHECK_EQ(gltop_model_row(model, 1)->flags, 0);
    CHECK_EQ(gltop_model_row(model, 2)->flags, GLTOP_FLAG_HAZARD);
    CHECK_EQ(gltop_model_since_last_switch(model, NULL), UINT64_MAX);
    CHECK_OK(gltop_model_update(model, snapshot_of(spinning, 3),
                                6 * second / 10, busy));
    CHECK_EQ(gltop_model_row(model, 1)->flags, 0); /* not for long yet */
    int at_least;
    CHECK_EQ(gltop_model_since_last_switch(model, &at_least),
             6 * second / 10);
    CHECK(at_least); /* no switch seen: the last came before gltop began */
    CHECK_OK(gltop_model_update(model, snapshot_of(spinning, 3),
                                12 * second / 10, busy));
    CHECK_EQ(gltop_model_row(model, 1)->flags, GLTOP_FLAG_BLOCKING);
    CHECK_EQ(gltop_model_row(model, 0)->flags, 0); /* suspended: never B */
    CHECK_EQ(gltop_model_row(model, 2)->flags, GLTOP_FLAG_HAZARD);
    CHECK_EQ(gltop_model_thread_count(model), 1);
    CHECK(gltop_model_thread(model, 0)->blocking);
    CHECK_EQ(gltop_model_thread(model, 0)->unswitched_ns, 12 * second / 10);
    CHECK(gltop_model_thread(model, 0)->busy == 0.97);
    /* Asleep in a system call (a hub waiting for events), or unknown:
     * not blocking, however long. */
    CHECK_OK(gltop_model_update(model, snapshot_of(spinning, 3),
                                18 * second / 10, asleep));
    CHECK_EQ(gltop_model_row(model, 1)->flags, 0);
    CHECK_OK(gltop_model_update(model, snapshot_of(spinning, 3),
                                24 * second / 10, NULL));
    CHECK_EQ(gltop_model_row(model, 1)->flags, 0);
    CHECK(gltop_model_thread(model, 0)->busy < 0);
    /* A switch: the count starts again. */
    struct spec switched[3];
    memcpy(switched, spinning, sizeof switched);
    switched[0].switches++;
    CHECK_OK(gltop_model_update(model, snapshot_of(switched, 3),
                                30 * second / 10, busy));
    CHECK_EQ(gltop_model_row(model, 1)->flags, 0);
    CHECK_EQ(gltop_model_thread(model, 0)->unswitched_ns, 0);
    CHECK_EQ(gltop_model_since_last_switch(model, &at_least), 0);
    CHECK(!at_least);
    CHECK_EQ(gltop_model_watched_ns(model), 3 * second);
    CHECK_EQ(gltop_model_find_row(model, 3), 2);
    CHECK_EQ(gltop_model_find_row(model, 99), SIZE_MAX);
    gltop_model_destroy(model);
}
TEST(gltop_model_handles_what_a_live_process_and_a_hostile_one_do)
{
    const uint64_t second = 1000000000;
    const double busy[1] = {1.0};
    gltop_model *model;
    CHECK_OK(gltop_model_create(&model));
    gltop_model_set_block_threshold(model, second);
    /* Busy, but alone: the other greenlet of the thread has finished. */
    static const struct spec alone[] = {
        {1, 0, GL_STATE_RUNNING, 2, 0, "main"},
        {2, 1, GL_STATE_DEAD, 1, 0, "done"},
    };
    CHECK_OK(gltop_model_update(model, snapshot_of(alone, 2), 0, busy));
    CHECK_OK(gltop_model_update(model, snapshot_of(alone, 2), 2 * second,
                                busy));
    CHECK_EQ(gltop_model_row(model, 0)->flags, 0);
    CHECK(!gltop_model_thread(model, 0)->blocking);
    /* A greenlet new since the last sample and already started has run
     * in between; one not started has not. */
    struct spec grown[4];
    memcpy(grown, alone, sizeof alone);
    grown[2] = (struct spec){3, 1, GL_STATE_SUSPENDED, 1, 100, "parked"};
    grown[3] = (struct spec){4, 1, GL_STATE_NEW, 0, 0, "later"};
    CHECK_OK(gltop_model_update(model, snapshot_of(grown, 4), 3 * second,
                                busy));
    CHECK_EQ(gltop_model_row(model, 2)->idle_ns, 0);
    CHECK_EQ(gltop_model_row(model, 3)->idle_ns, UINT64_MAX);
    /* A clock that goes back (a hostile segment) is held: no duration
     * wraps around. */
    CHECK_OK(gltop_model_update(model, snapshot_of(grown, 4), second, busy));
    CHECK(gltop_model_row(model, 2)->idle_ns <= 3 * second);
    CHECK(gltop_model_thread(model, 0)->unswitched_ns <= 3 * second);
    /* Duplicate ids (only a corrupt segment has them) are refused, and
     * the model keeps what it had. */
    struct spec twins[4];
    memcpy(twins, grown, sizeof twins);
    twins[3].id = 3;
    CHECK_EQ(gltop_model_update(model, snapshot_of(twins, 4), 4 * second,
                                busy),
             GL_ECORRUPT);
    CHECK_EQ(gltop_model_row_count(model), 4);
    gltop_model_destroy(model);

    /* A chain of parents 20,000 deep, filtered on its last link: the
     * whole chain is shown, each once (built in linear time). */
    enum { DEPTH = 20000 };
    struct spec *chain = calloc(DEPTH, sizeof *chain);
    CHECK(chain != NULL);
    for (size_t i = 0; i < DEPTH; i++)
        chain[i] = (struct spec){i + 1, i, GL_STATE_SUSPENDED, 1, 0,
                                 i + 1 == DEPTH ? "leaf" : "link"};
    CHECK_OK(gltop_model_create(&model));
    CHECK_OK(gltop_model_update(model, snapshot_of(chain, DEPTH), 1, NULL));
    CHECK_OK(gltop_model_set_filter(model, "leaf"));
    CHECK_EQ(gltop_model_row_count(model), DEPTH);
    CHECK_EQ(gltop_model_row(model, DEPTH - 1)->depth, DEPTH - 1);
    gltop_model_destroy(model);
    free(chain);
}
#endif /* GL_TEST_HAVE_INSPECT */
