/*
 * bench_clock.h -- the measuring harness that the C and the C++ halves of
 * the switch benchmark share: a monotonic clock in nanoseconds, the shape of
 * a measured body, the runner that takes the median of repeated timed
 * loops, and the descent that puts a body's switches a given number of
 * bytes down the stack.
 *
 * How a number is made: a body runs `rounds` rounds of one operation and
 * times only its hot loop, so setup (creating coroutines, descending the
 * stack) stays out of the figure. The runner first doubles `rounds` until
 * one call lasts a good fraction of the wanted length (this also warms
 * caches and the allocator) and scales it to the wanted length; then it
 * calls the body once per repetition and reports the median time per
 * operation, with the fastest and slowest repetitions as a measure of noise.
 *
 * Everything here is static, because both bench/switch_bench.c and
 * bench/boost_context.cpp include it; it is valid C and C++ for that reason.
 */
#ifndef BENCH_CLOCK_H
#define BENCH_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. Costs some 20 ns even through the vDSO,
 * which is why bodies read it around their loop, never per operation. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* A measured body: runs `rounds` rounds of its operation and returns how
 * many nanoseconds its timed part took. `context` is the body's own (for the
 * switch bodies, a `const size_t *` giving the stack depth in bytes). A body
 * that sees a wrong result stops the program (bench_wrong_value). */
typedef uint64_t bench_body(void *context, uint64_t rounds);

typedef struct bench_settings {
    unsigned repetitions;  /* the median is taken over this many, >= 1 */
    unsigned milliseconds; /* wanted length of one repetition, >= 1 */
} bench_settings;

typedef struct bench_result {
    double median_ns; /* per unit: per switch, or per whole life */
    double fastest_ns;
    double slowest_ns;
    uint64_t rounds; /* rounds in each repetition */
} bench_result;

/* Reports a body whose check failed, and stops: a benchmark of broken code
 * is worthless, and the numbers of the other bodies would mislead. */
static __attribute__((noinline, cold, noreturn, unused)) void
bench_wrong_value(const char *where, uintptr_t received, uintptr_t expected)
{
    fprintf(stderr, "switch-bench: %s: received %ju, expected %ju\n", where,
            (uintmax_t)received, (uintmax_t)expected);
    abort();
}

/* Checks one value that a body received; cheap enough for hot loops. */
static inline void bench_expect(const char *where, uintptr_t received,
                                uintptr_t expected)
{
    if (__builtin_expect(received != expected, 0))
        bench_wrong_value(where, received, expected);
}

/* malloc that stops the benchmark when memory runs out. */
static inline void *bench_allocate(size_t bytes)
{
    void *memory = malloc(bytes);
    if (!memory) {
        fprintf(stderr, "switch-bench: out of memory (%zu bytes)\n", bytes);
        abort();
    }
    return memory;
}

static inline int bench_compare_doubles(const void *left, const void *right)
{
    double a = *(const double *)left, b = *(const double *)right;
    return (a > b) - (a < b);
}

/* `rounds` scaled so that a call that took `elapsed_ns` lasts `wanted_ns`. */
static inline uint64_t bench_scale_rounds(uint64_t rounds, uint64_t elapsed_ns,
                                          uint64_t wanted_ns)
{
    double scaled = (double)rounds * (double)wanted_ns /
                    (double)(elapsed_ns ? elapsed_ns : 1);
    return scaled < 1.0 ? 1 : (uint64_t)scaled;
}

/* How many rounds make one repetition last about `milliseconds`. Starts
 * small and doubles, so that a slow body is not run for minutes; then
 * scales, and scales once more from a call of the full length, because the
 * first short calls run on cold caches and a cold allocator and would
 * make the repetitions too short. */
static inline uint64_t bench_calibrate(const bench_settings *settings,
                                       bench_body *body, void *context)
{
    const uint64_t wanted_ns = (uint64_t)settings->milliseconds * 1000000u;
    uint64_t rounds = 16, elapsed_ns;
    while ((elapsed_ns = body(context, rounds)) < wanted_ns / 8)
        rounds *= 2;
    rounds = bench_scale_rounds(rounds, elapsed_ns, wanted_ns);
    return bench_scale_rounds(rounds, body(context, rounds), wanted_ns);
}

/* Runs `body` settings->repetitions times for about settings->milliseconds
 * each and returns the median time per unit, one round being
 * `units_per_round` units (2 for a ping-pong round trip: two switches). */
static inline bench_result bench_median(const bench_settings *settings,
                                        bench_body *body, void *context,
                                        unsigned units_per_round)
{
    bench_result result;
    unsigned count = settings->repetitions;
    double *per_unit_ns =
        (double *)bench_allocate(count * sizeof *per_unit_ns);
    result.rounds = bench_calibrate(settings, body, context);
    double units = (double)result.rounds * units_per_round;
    for (unsigned i = 0; i < count; i++)
        per_unit_ns[i] = (double)body(context, result.rounds) / units;
    qsort(per_unit_ns, count, sizeof *per_unit_ns, bench_compare_doubles);
    result.median_ns = count % 2
                           ? per_unit_ns[count / 2]
                           : (per_unit_ns[count / 2 - 1] +
                              per_unit_ns[count / 2]) / 2;
    result.fastest_ns = per_unit_ns[0];
    result.slowest_ns = per_unit_ns[count - 1];
    free(per_unit_ns);
    return result;
}

/* ------------------------------------------------------- stack depth */

/* What runs at the bottom of a descent. */
typedef void bench_continuation(void *argument);

/* Written by every frame of a descent, so that its ballast counts as used. */
static volatile uintptr_t bench_depth_sink;

/* One frame's ballast. Small, so that the depth reached overshoots the
 * wanted one by less than one frame (on x86-64 with gcc -O2, a frame is
 * this size plus 16 bytes: 144). */
enum { BENCH_BALLAST_BYTES = 128 };

/* One step of bench_call_at_depth. noinline and volatile keep one real
 * frame per call; the read after the recursive call keeps the call from
 * becoming a jump (a tail call would reuse the frame and go nowhere).
 *
 *   start  +--------------------+ bench_call_at_depth's frame
 *          | bench_descend      |
 *          | bench_descend      |  each: BENCH_BALLAST_BYTES + overhead
 *          | ...                |
 *   start - depth_bytes - - - - -  first frame whose ballast reaches here
 *          | bench_descend      |  calls then(argument)
 *          +--------------------+
 */
static __attribute__((noinline, unused)) void
bench_descend(uintptr_t start, size_t depth_bytes, bench_continuation *then,
              void *argument)
{
    volatile char ballast[BENCH_BALLAST_BYTES];
    ballast[0] = (char)depth_bytes;
    ballast[BENCH_BALLAST_BYTES - 1] = (char)start;
    if (start - (uintptr_t)ballast < depth_bytes)
        bench_descend(start, depth_bytes, then, argument);
    else
        then(argument);
    bench_depth_sink = (uintptr_t)(ballast[0] + ballast[BENCH_BALLAST_BYTES - 1]);
}

/* Calls then(argument) from about `depth_bytes` bytes of extra stack below
 * the caller; 0 calls it directly. */
static inline void bench_call_at_depth(size_t depth_bytes,
                                       bench_continuation *then,
                                       void *argument)
{
    if (depth_bytes == 0) {
        then(argument);
        return;
    }
    bench_descend((uintptr_t)__builtin_frame_address(0), depth_bytes, then,
                  argument);
}

#endif /* BENCH_CLOCK_H */
