/*
 * switch_bench.c -- the switch benchmark: how long the engine takes to
 * switch between two greenlets, and to run a greenlet's whole life, next to
 * the same work done with swapcontext (ucontext) and with Boost.Context's
 * fcontext, all measured in one run. `make bench` runs it; --help lists the
 * options. Timing is information, never a test: the exit status is 0
 * whatever the numbers are.
 *
 * The switch is timed as a ping-pong between the main greenlet and one
 * partner, each round trip being two switches, at three stack depths. At
 * depth D both sides switch from D bytes of extra stack below the point
 * where the partner was started, so with the engine every switch saves
 * about D bytes of the side that leaves and copies back about D bytes of
 * the side that resumes:
 *
 *   higher addresses
 *   +------------------------+
 *   | engine_run_pingpong    |  main starts the partner from here, so the
 *   +------------------------+  partner's stack_stop is here; both sides
 *   | D bytes of descent     |  then descend D bytes and ping-pong: the
 *   | (main's or partner's,  |  region belongs to whichever side runs, and
 *   |  whoever runs)         |  the other side's D bytes wait on the heap
 *   +------------------------+
 *   lower addresses
 *
 * ucontext and fcontext give each coroutine a stack of its own, so depth
 * copies nothing there; those rows show that their cost does not change
 * with depth. The copy floor (copy_floor.h, x86-64) copies what the
 * engine copies and does nothing else: the least a stack-copying switch
 * costs here, for reading the engine's ratios against. The harness (clock, median runner, descent) is in
 * bench_clock.h; the Boost half is C++ and lives in boost_context.cpp.
 */
#include "bench_clock.h"
#include "copy_floor.h"
#include "glengine.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

/* Defined in boost_context.cpp (C++, because Boost.Context's API is). */
extern bench_body boost_fcontext_switch_rounds;
extern bench_body boost_fcontext_life_rounds;

/* Stack of each ucontext coroutine; the Boost half uses the same size.
 * At 64 KiB glibc's malloc serves it from the heap without a syscall
 * (its mmap threshold starts at 128 KiB). */
enum { UCONTEXT_STACK_BYTES = 64 * 1024 };

/* ------------------------------------------------------------- engine */

static __attribute__((noinline, cold, noreturn)) void
engine_failed(const char *what, int code)
{
    fprintf(stderr, "switch-bench: %s: %s (%s)\n", what, gl_strerror(code),
            gl_error_name(code));
    abort();
}

static inline void check_engine(int code, const char *what)
{
    if (__builtin_expect(code != 0, 0))
        engine_failed(what, code);
}

static inline gl_message engine_value(uintptr_t value)
{
    gl_message message = {(void *)value, 0};
    return message;
}

/* One ping-pong between the main greenlet and `partner`. */
typedef struct engine_pingpong {
    size_t depth_bytes;
    uint64_t rounds;
    gl_greenlet *main_greenlet;
    gl_greenlet *partner;
    uint64_t elapsed_ns;
    /* Stack bytes that each side had on the heap while the other ran,
     * read once the loop is over: what one switch saves, and copies back. */
    size_t main_saved_bytes;
    size_t partner_saved_bytes;
} engine_pingpong;

/* Out of line, so that its large info record does not sit in the frames of
 * the ping-pong loops, which the engine would then copy on every switch. */
static __attribute__((noinline)) size_t
engine_saved_bytes(const gl_greenlet *greenlet)
{
    gl_greenlet_info info;
    gl_greenlet_get_info(greenlet, &info);
    return info.saved_bytes;
}

/* The partner, at its depth: says it is ready, then answers every value v
 * with v + 1 until it receives a throw, which here means "stop". */
static void engine_partner_loop(void *argument)
{
    engine_pingpong *pingpong = argument;
    gl_message received;
    check_engine(gl_switch(pingpong->main_greenlet, engine_value(0),
                           &received),
                 "gl_switch from the partner");
    /* The first value comes from main's loop, at main's depth. */
    pingpong->main_saved_bytes = engine_saved_bytes(pingpong->main_greenlet);
    while (!received.thrown)
        check_engine(gl_switch(pingpong->main_greenlet,
                               engine_value((uintptr_t)received.value + 1),
                               &received),
                     "gl_switch from the partner");
}

static gl_message engine_partner_run(void *argument, gl_message first)
{
    engine_pingpong *pingpong = argument;
    (void)first;
    bench_call_at_depth(pingpong->depth_bytes, engine_partner_loop, pingpong);
    return engine_value(0);
}

/* The main side, at its depth: the timed loop. */
static void engine_main_loop(void *argument)
{
    engine_pingpong *pingpong = argument;
    gl_greenlet *partner = pingpong->partner;
    uint64_t start_ns = bench_now_ns();
    for (uint64_t round = 1; round <= pingpong->rounds; round++) {
        gl_message received;
        check_engine(gl_switch(partner, engine_value(round), &received),
                     "gl_switch from main");
        bench_expect("engine ping-pong", (uintptr_t)received.value,
                     round + 1);
    }
    pingpong->elapsed_ns = bench_now_ns() - start_ns;
    pingpong->partner_saved_bytes = engine_saved_bytes(partner);
}

/* Kept out of line so that the partner starts right below this call, at
 * the same height as engine_main_loop's frame (see the file's diagram). */
static __attribute__((noinline)) void
engine_start_partner(engine_pingpong *pingpong)
{
    gl_message received;
    check_engine(gl_switch(pingpong->partner, engine_value(0), &received),
                 "gl_switch starting the partner");
    bench_expect("engine partner ready", (uintptr_t)received.value, 0);
}

static void engine_run_pingpong(engine_pingpong *pingpong)
{
    pingpong->main_greenlet = gl_main();
    if (!pingpong->main_greenlet)
        engine_failed("gl_main", GL_ENOMEM);
    check_engine(gl_create(&pingpong->partner, engine_partner_run, pingpong,
                           NULL),
                 "gl_create");
    engine_start_partner(pingpong);
    bench_call_at_depth(pingpong->depth_bytes, engine_main_loop, pingpong);
    gl_message stop = {NULL, 1}, received;
    check_engine(gl_switch(pingpong->partner, stop, &received),
                 "gl_switch stopping the partner");
    if (gl_state_of(pingpong->partner) != GL_STATE_DEAD)
        bench_wrong_value("engine partner state after stop",
                          (uintptr_t)gl_state_of(pingpong->partner),
                          GL_STATE_DEAD);
    check_engine(gl_destroy(pingpong->partner), "gl_destroy");
}

/* bench_body: `context` is a const size_t *, the depth in bytes. */
static uint64_t engine_switch_rounds(void *context, uint64_t rounds)
{
    engine_pingpong pingpong = {.depth_bytes = *(const size_t *)context,
                                .rounds = rounds};
    engine_run_pingpong(&pingpong);
    return pingpong.elapsed_ns;
}

static gl_message engine_finish_at_once(void *argument, gl_message first)
{
    (void)argument;
    return engine_value((uintptr_t)first.value + 1);
}

/* bench_body: create, start, finish and destroy; `context` is unused. */
static uint64_t engine_life_rounds(void *context, uint64_t rounds)
{
    (void)context;
    uint64_t start_ns = bench_now_ns();
    for (uint64_t round = 1; round <= rounds; round++) {
        gl_greenlet *greenlet;
        gl_message received;
        check_engine(gl_create(&greenlet, engine_finish_at_once, NULL, NULL),
                     "gl_create");
        check_engine(gl_switch(greenlet, engine_value(round), &received),
                     "gl_switch");
        bench_expect("engine life", (uintptr_t)received.value, round + 1);
        check_engine(gl_destroy(greenlet), "gl_destroy");
    }
    return bench_now_ns() - start_ns;
}

/* ---------------------------------------------------------- ucontext */

/* makecontext passes only int arguments, so a pointer goes as two halves. */
typedef void ucontext_entry(unsigned high, unsigned low);

static void *ucontext_join(unsigned high, unsigned low)
{
    return (void *)(((uintptr_t)high << 32) | low);
}

/* Readies `context` to run entry(argument) on `stack`, and to resume `link`
 * when entry returns. */
static void ucontext_prepare(ucontext_t *context, void *stack,
                             ucontext_t *link, ucontext_entry *entry,
                             void *argument)
{
    uint64_t bits = (uintptr_t)argument;
    if (getcontext(context) != 0) {
        perror("switch-bench: getcontext");
        abort();
    }
    context->uc_stack.ss_sp = stack;
    context->uc_stack.ss_size = UCONTEXT_STACK_BYTES;
    context->uc_link = link;
    makecontext(context, (void (*)(void))entry, 2, (unsigned)(bits >> 32),
                (unsigned)bits);
}

static void ucontext_swap(ucontext_t *from, ucontext_t *to)
{
    if (swapcontext(from, to) != 0) {
        perror("switch-bench: swapcontext");
        abort();
    }
}

/* One ping-pong between the main flow and a partner on its own stack. The
 * value in flight travels in `value`, the stop request in `stop`. */
typedef struct ucontext_pingpong {
    size_t depth_bytes;
    uint64_t rounds;
    ucontext_t main_context;
    ucontext_t partner_context;
    uintptr_t value;
    int stop;
    uint64_t elapsed_ns;
} ucontext_pingpong;

static void ucontext_partner_loop(void *argument)
{
    ucontext_pingpong *pingpong = argument;
    pingpong->value = 0; /* ready */
    ucontext_swap(&pingpong->partner_context, &pingpong->main_context);
    while (!pingpong->stop) {
        pingpong->value++;
        ucontext_swap(&pingpong->partner_context, &pingpong->main_context);
    }
}

static void ucontext_partner_entry(unsigned high, unsigned low)
{
    ucontext_pingpong *pingpong = ucontext_join(high, low);
    bench_call_at_depth(pingpong->depth_bytes, ucontext_partner_loop,
                        pingpong);
}

static void ucontext_main_loop(void *argument)
{
    ucontext_pingpong *pingpong = argument;
    uint64_t start_ns = bench_now_ns();
    for (uint64_t round = 1; round <= pingpong->rounds; round++) {
        pingpong->value = round;
        ucontext_swap(&pingpong->main_context, &pingpong->partner_context);
        bench_expect("swapcontext ping-pong", pingpong->value, round + 1);
    }
    pingpong->elapsed_ns = bench_now_ns() - start_ns;
}

/* bench_body: `context` is a const size_t *, the depth in bytes. */
static uint64_t ucontext_switch_rounds(void *context, uint64_t rounds)
{
    ucontext_pingpong pingpong = {.depth_bytes = *(const size_t *)context,
                                  .rounds = rounds};
    void *stack = bench_allocate(UCONTEXT_STACK_BYTES);
    ucontext_prepare(&pingpong.partner_context, stack,
                     &pingpong.main_context, ucontext_partner_entry,
                     &pingpong);
    ucontext_swap(&pingpong.main_context, &pingpong.partner_context);
    bench_expect("swapcontext partner ready", pingpong.value, 0);
    bench_call_at_depth(pingpong.depth_bytes, ucontext_main_loop, &pingpong);
    pingpong.stop = 1; /* the partner returns, and uc_link brings us back */
    ucontext_swap(&pingpong.main_context, &pingpong.partner_context);
    free(stack);
    return pingpong.elapsed_ns;
}

static void ucontext_finish_at_once(unsigned high, unsigned low)
{
    uintptr_t *value = ucontext_join(high, low);
    *value += 1;
}

/* bench_body: allocate a stack, create, start, finish, free; `context` is
 * unused. */
static uint64_t ucontext_life_rounds(void *context, uint64_t rounds)
{
    (void)context;
    ucontext_t main_context, coroutine;
    uint64_t start_ns = bench_now_ns();
    for (uint64_t round = 1; round <= rounds; round++) {
        uintptr_t value = round;
        void *stack = bench_allocate(UCONTEXT_STACK_BYTES);
        ucontext_prepare(&coroutine, stack, &main_context,
                         ucontext_finish_at_once, &value);
        ucontext_swap(&main_context, &coroutine);
        bench_expect("swapcontext life", value, round + 1);
        free(stack);
    }
    return bench_now_ns() - start_ns;
}

/* -------------------------------------------------------- copy floor */
#ifdef COPY_FLOOR_AVAILABLE

/* The engine's ping-pong, layout and all, on the bare copying switch. The
 * value in flight travels in `value`, the stop request in `stop`. */
typedef struct floor_pingpong {
    size_t depth_bytes;
    uint64_t rounds;
    copy_floor_side main_side, partner_side;
    uintptr_t value;
    int stop;
    uint64_t elapsed_ns;
} floor_pingpong;

/* What each side saved at its last switch of the loop, for the report. */
static size_t floor_saved[2];

static void floor_partner_loop(void *argument)
{
    floor_pingpong *pingpong = argument;
    pingpong->value = 0; /* ready */
    copy_floor_switch(&pingpong->partner_side, &pingpong->main_side);
    while (!pingpong->stop) {
        pingpong->value++;
        copy_floor_switch(&pingpong->partner_side, &pingpong->main_side);
    }
    copy_floor_switch(&pingpong->partner_side, &pingpong->main_side);
    abort(); /* never resumed after the stop */
}

static void floor_partner_run(void *argument)
{
    floor_pingpong *pingpong = argument;
    bench_call_at_depth(pingpong->depth_bytes, floor_partner_loop, pingpong);
}

/* Like ucontext_main_loop: each subject has a timed loop of its own that
 * calls its switch directly; a shared loop would add an indirect call to
 * every switch. */
static void floor_main_loop(void *argument)
{
    floor_pingpong *pingpong = argument;
    uint64_t start_ns = bench_now_ns();
    for (uint64_t round = 1; round <= pingpong->rounds; round++) {
        pingpong->value = round;
        copy_floor_switch(&pingpong->main_side, &pingpong->partner_side);
        bench_expect("copy floor ping-pong", pingpong->value, round + 1);
    }
    pingpong->elapsed_ns = bench_now_ns() - start_ns;
}

/* Out of line, like engine_start_partner: the partner starts at the
 * height of floor_main_loop's frame. */
static __attribute__((noinline)) void
floor_start_partner(floor_pingpong *pingpong)
{
    copy_floor_start(&pingpong->main_side, &pingpong->partner_side,
                     floor_partner_run, pingpong);
    bench_expect("copy floor partner ready", pingpong->value, 0);
}

/* bench_body: `context` is a const size_t *, the depth in bytes. */
static uint64_t floor_switch_rounds(void *context, uint64_t rounds)
{
    floor_pingpong pingpong = {.depth_bytes = *(const size_t *)context,
                               .rounds = rounds};
    pingpong.main_side.copy = bench_allocate(COPY_FLOOR_BYTES);
    pingpong.partner_side.copy = bench_allocate(COPY_FLOOR_BYTES);
    floor_start_partner(&pingpong);
    bench_call_at_depth(pingpong.depth_bytes, floor_main_loop, &pingpong);
    floor_saved[0] = pingpong.main_side.saved;
    floor_saved[1] = pingpong.partner_side.saved;
    pingpong.stop = 1; /* the partner comes back one last time */
    copy_floor_switch(&pingpong.main_side, &pingpong.partner_side);
    free(pingpong.main_side.copy);
    free(pingpong.partner_side.copy);
    return pingpong.elapsed_ns;
}
#endif /* COPY_FLOOR_AVAILABLE */

/* ------------------------------------------------------- what to run */

enum {
    SUBJECT_ENGINE,
    SUBJECT_SWAPCONTEXT,
    SUBJECT_BOOST,
#ifdef COPY_FLOOR_AVAILABLE
    SUBJECT_FLOOR,
#endif
    SUBJECT_COUNT
};

typedef struct subject {
    const char *name; /* column heading and JSON key */
    bench_body *switch_rounds;
    bench_body *life_rounds; /* NULL: no such number */
} subject;

static const subject subjects[SUBJECT_COUNT] = {
    [SUBJECT_ENGINE] = {"engine", engine_switch_rounds, engine_life_rounds},
    [SUBJECT_SWAPCONTEXT] = {"swapcontext", ucontext_switch_rounds,
                             ucontext_life_rounds},
    [SUBJECT_BOOST] = {"boost", boost_fcontext_switch_rounds,
                       boost_fcontext_life_rounds},
#ifdef COPY_FLOOR_AVAILABLE
    /* It has no life of its own: nothing is created. */
    [SUBJECT_FLOOR] = {"copy_floor", floor_switch_rounds, NULL},
#endif
};

enum { DEPTH_COUNT = 3 };
static const size_t switch_depths[DEPTH_COUNT] = {0, 1024, 16 * 1024};

/* The targets for the shallow switch. Information only. */
static const double target_engine_over_boost_at_most = 3.0;
static const double target_swapcontext_over_engine_at_least = 5.0;

typedef struct bench_report {
    bench_settings settings;
    bench_result switches[DEPTH_COUNT][SUBJECT_COUNT]; /* ns per switch */
    bench_result lives[SUBJECT_COUNT];                 /* ns per life */
    size_t engine_main_saved_bytes[DEPTH_COUNT];
    size_t engine_partner_saved_bytes[DEPTH_COUNT];
    size_t floor_main_saved_bytes[DEPTH_COUNT];
    size_t floor_partner_saved_bytes[DEPTH_COUNT];
} bench_report;

static void measure(bench_report *report)
{
    for (int depth = 0; depth < DEPTH_COUNT; depth++) {
        void *context = (void *)&switch_depths[depth];
        for (int s = 0; s < SUBJECT_COUNT; s++)
            report->switches[depth][s] =
                bench_median(&report->settings, subjects[s].switch_rounds,
                             context, 2);
        /* One short extra run, untimed, to read what the engine copies. */
        engine_pingpong probe = {.depth_bytes = switch_depths[depth],
                                 .rounds = 1};
        engine_run_pingpong(&probe);
        report->engine_main_saved_bytes[depth] = probe.main_saved_bytes;
        report->engine_partner_saved_bytes[depth] = probe.partner_saved_bytes;
#ifdef COPY_FLOOR_AVAILABLE
        report->floor_main_saved_bytes[depth] = floor_saved[0];
        report->floor_partner_saved_bytes[depth] = floor_saved[1];
#endif
    }
    for (int s = 0; s < SUBJECT_COUNT; s++)
        if (subjects[s].life_rounds)
            report->lives[s] = bench_median(&report->settings,
                                            subjects[s].life_rounds, NULL, 1);
}

/* ------------------------------------------------------------ output */

static double engine_over_boost(const bench_result row[SUBJECT_COUNT])
{
    return row[SUBJECT_ENGINE].median_ns / row[SUBJECT_BOOST].median_ns;
}

static double swapcontext_over_engine(const bench_result row[SUBJECT_COUNT])
{
    return row[SUBJECT_SWAPCONTEXT].median_ns /
           row[SUBJECT_ENGINE].median_ns;
}

#ifdef COPY_FLOOR_AVAILABLE
/* How much of the engine's time the bare copying switch takes too; 0 for
 * the life row, where the floor has no number. */
static double engine_over_floor(const bench_result row[SUBJECT_COUNT])
{
    double floor_ns = row[SUBJECT_FLOOR].median_ns;
    return floor_ns > 0 ? row[SUBJECT_ENGINE].median_ns / floor_ns : 0;
}
#endif

/* How much the slowest repetition exceeds the fastest, in percent. */
static double spread_percent(const bench_result *result)
{
    return 100.0 * (result->slowest_ns / result->fastest_ns - 1.0);
}

/* The largest spread_percent of all the numbers of the report. */
static double largest_spread_percent(const bench_report *report)
{
    double largest = 0;
    for (int s = 0; s < SUBJECT_COUNT; s++) {
        for (int depth = 0; depth < DEPTH_COUNT; depth++)
            if (spread_percent(&report->switches[depth][s]) > largest)
                largest = spread_percent(&report->switches[depth][s]);
        if (subjects[s].life_rounds &&
            spread_percent(&report->lives[s]) > largest)
            largest = spread_percent(&report->lives[s]);
    }
    return largest;
}

/* A number of the table, or "-" where there is none (zero). */
static void print_cell(int width, int decimals, double value)
{
    if (value > 0)
        printf(" %*.*f", width, decimals, value);
    else
        printf(" %*s", width, "-");
}

static void print_table_row(const char *label,
                            const bench_result row[SUBJECT_COUNT])
{
    printf("%-34s", label);
    for (int s = 0; s < SUBJECT_COUNT; s++)
        print_cell(12, 1, row[s].median_ns);
    printf(" %13.2f %19.2f", engine_over_boost(row),
           swapcontext_over_engine(row));
#ifdef COPY_FLOOR_AVAILABLE
    print_cell(13, 2, engine_over_floor(row));
#endif
    printf("\n");
}

static const char *pass_or_miss(int passed)
{
    return passed ? "PASS" : "MISS";
}

static void print_table(const bench_report *report)
{
    printf("switch benchmark: median of %u repetitions of ~%u ms each, in "
           "ns\n\n",
           report->settings.repetitions, report->settings.milliseconds);
    printf("%-34s", "metric");
    for (int s = 0; s < SUBJECT_COUNT; s++)
        printf(" %12s", subjects[s].name);
    printf(" %13s %19s", "engine/boost", "swapcontext/engine");
#ifdef COPY_FLOOR_AVAILABLE
    printf(" %13s", "engine/floor");
#endif
    printf("\n");
    for (int depth = 0; depth < DEPTH_COUNT; depth++) {
        char label[64];
        snprintf(label, sizeof label, "switch, depth %zu B (per switch)",
                 switch_depths[depth]);
        print_table_row(label, report->switches[depth]);
    }
    print_table_row("create+start+finish+free (whole)", report->lives);

    printf("\nengine stack bytes saved per switch (main / partner):");
    for (int depth = 0; depth < DEPTH_COUNT; depth++)
        printf("%s depth %zu: %zu / %zu", depth ? ";" : "",
               switch_depths[depth], report->engine_main_saved_bytes[depth],
               report->engine_partner_saved_bytes[depth]);
    printf("\n(each engine switch saves the leaving side's bytes and copies "
           "back the resuming side's;\n swapcontext and boost switch stacks "
           "and copy nothing at any depth)\n");
#ifdef COPY_FLOOR_AVAILABLE
    printf("copy_floor: the same copies as the engine's and nothing else (no "
           "records, checks\n or hooks): the least a stack-copying switch "
           "costs here; floor/boost at depth 0 = %.2f\n",
           report->switches[0][SUBJECT_FLOOR].median_ns /
               report->switches[0][SUBJECT_BOOST].median_ns);
    printf("copy_floor stack bytes saved per switch (main / partner):");
    for (int depth = 0; depth < DEPTH_COUNT; depth++)
        printf("%s depth %zu: %zu / %zu", depth ? ";" : "",
               switch_depths[depth], report->floor_main_saved_bytes[depth],
               report->floor_partner_saved_bytes[depth]);
    printf("\n");
#endif

    printf("noise: slowest repetition at most %.1f%% above the fastest\n",
           largest_spread_percent(report));

    double over_boost = engine_over_boost(report->switches[0]);
    double over_engine = swapcontext_over_engine(report->switches[0]);
    printf("\ntargets for the shallow switch (information only; the exit "
           "status is 0 either way):\n");
    printf("  within %.0fx of Boost.Context:   engine/boost = %5.2f   %s\n",
           target_engine_over_boost_at_most, over_boost,
           pass_or_miss(over_boost <= target_engine_over_boost_at_most));
    printf("  %.0fx faster than swapcontext:    swapcontext/engine = %5.2f   "
           "%s\n",
           target_swapcontext_over_engine_at_least, over_engine,
           pass_or_miss(over_engine >=
                        target_swapcontext_over_engine_at_least));
}

static void print_json_result(const char *name, const bench_result *result)
{
    if (result->median_ns <= 0) { /* no such number */
        printf("\"%s\": null", name);
        return;
    }
    printf("\"%s\": {\"ns\": %.3f, \"fastest_ns\": %.3f, \"slowest_ns\": "
           "%.3f, \"rounds\": %ju}",
           name, result->median_ns, result->fastest_ns, result->slowest_ns,
           (uintmax_t)result->rounds);
}

/* The subjects' results of one row, and the row's two ratios. */
static void print_json_row(const bench_result row[SUBJECT_COUNT])
{
    for (int s = 0; s < SUBJECT_COUNT; s++) {
        print_json_result(subjects[s].name, &row[s]);
        printf(", ");
    }
    printf("\"engine_over_boost\": %.4f, \"swapcontext_over_engine\": %.4f",
           engine_over_boost(row), swapcontext_over_engine(row));
#ifdef COPY_FLOOR_AVAILABLE
    if (engine_over_floor(row) > 0)
        printf(", \"engine_over_floor\": %.4f", engine_over_floor(row));
#endif
}

static void print_json(const bench_report *report)
{
    double over_boost = engine_over_boost(report->switches[0]);
    double over_engine = swapcontext_over_engine(report->switches[0]);
    printf("{\"repetitions\": %u, \"milliseconds\": %u, \"switch\": [",
           report->settings.repetitions, report->settings.milliseconds);
    for (int depth = 0; depth < DEPTH_COUNT; depth++) {
        printf("%s{\"depth_bytes\": %zu, ", depth ? ", " : "",
               switch_depths[depth]);
        print_json_row(report->switches[depth]);
        printf(", \"engine_main_saved_bytes\": %zu, "
               "\"engine_partner_saved_bytes\": %zu}",
               report->engine_main_saved_bytes[depth],
               report->engine_partner_saved_bytes[depth]);
    }
    printf("], \"life\": {");
    print_json_row(report->lives);
    printf("}, \"targets\": {\"engine_over_boost\": {\"value\": %.4f, "
           "\"at_most\": %.1f, \"pass\": %s}, \"swapcontext_over_engine\": "
           "{\"value\": %.4f, \"at_least\": %.1f, \"pass\": %s}}}\n",
           over_boost, target_engine_over_boost_at_most,
           over_boost <= target_engine_over_boost_at_most ? "true" : "false",
           over_engine, target_swapcontext_over_engine_at_least,
           over_engine >= target_swapcontext_over_engine_at_least ? "true"
                                                                  : "false");
}

/* ----------------------------------------------------------- command */

static void print_usage(FILE *to)
{
    fprintf(to,
            "usage: switch-bench [--reps N] [--ms T] [--json] [--help]\n"
            "\n"
            "Times the engine's switch (ping-pong at stack depths 0, 1 KiB, "
            "16 KiB) and a\n"
            "greenlet's whole life, next to swapcontext and Boost.Context's "
            "fcontext,\n"
            "and (x86-64) next to a bare stack-copying switch that copies "
            "what the engine\n"
            "copies and does nothing else.\n"
            "Each number is the median of N repetitions of a loop of about "
            "T ms.\n"
            "\n"
            "  --reps N   repetitions per number (default 7)\n"
            "  --ms T     milliseconds per repetition (default 50)\n"
            "  --json     print one JSON object instead of the table\n"
            "  --help     print this and exit\n"
            "\n"
            "The exit status is 0 whatever the numbers; 2 for bad usage.\n");
}

static __attribute__((noreturn)) void usage_error(const char *message,
                                                  const char *argument)
{
    fprintf(stderr, "switch-bench: %s%s\n", message, argument);
    print_usage(stderr);
    exit(2);
}

/* The number after the option at argv[*index], a whole decimal number in
 * [1, 100000]; advances *index past it. Exits with usage otherwise. */
static unsigned option_count(int argc, char **argv, int *index)
{
    const char *option = argv[*index];
    if (*index + 1 == argc)
        usage_error("missing number after ", option);
    const char *text = argv[++*index];
    char *end;
    unsigned long value = strtoul(text, &end, 10);
    if (end == text || *end != '\0' || text[0] == '-' || value < 1 ||
        value > 100000)
        usage_error("expected a number from 1 to 100000: ", text);
    return (unsigned)value;
}

int main(int argc, char **argv)
{
    bench_report report = {.settings = {.repetitions = 7, .milliseconds = 50}};
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *option = argv[i];
        if (strcmp(option, "--help") == 0 || strcmp(option, "-h") == 0) {
            print_usage(stdout);
            return 0;
        } else if (strcmp(option, "--json") == 0) {
            json = 1;
        } else if (strcmp(option, "--reps") == 0) {
            report.settings.repetitions = option_count(argc, argv, &i);
        } else if (strcmp(option, "--ms") == 0) {
            report.settings.milliseconds = option_count(argc, argv, &i);
        } else {
            usage_error("unknown option: ", option);
        }
    }
    measure(&report);
    if (json)
        print_json(&report);
    else
        print_table(&report);
    return 0;
}
