/*
 * copy_floor.h -- the least a stack-copying switch can cost on this
 * machine: two coroutines on one stack that save and restore exactly what
 * the engine would (the leaving side's bytes below the partner's start,
 * the resuming side's saved bytes, the same 64-byte switch frame, its
 * registers read back from the copy), with nothing else: no records, no
 * checks, no hooks, no allocation, no unwind information past the
 * prologue. The switch benchmark runs it beside the engine so that the
 * engine's ratio to Boost.Context can be read against the ratio this
 * floor has. x86-64 only (copy_floor_x86_64.S); COPY_FLOOR_AVAILABLE says
 * whether it is there.
 */
#ifndef COPY_FLOOR_H
#define COPY_FLOOR_H

#include <stddef.h>

#if defined(__x86_64__)
#define COPY_FLOOR_AVAILABLE 1

/* One side. The assembly reads it at these offsets: 0, 8, 16, 24. */
typedef struct copy_floor_side {
    char *stack_pointer;   /* where its switch frame is, while suspended */
    char *stack_stop;      /* its bytes are [stack_pointer, stack_stop) */
    char *copy;            /* room for them: COPY_FLOOR_BYTES */
    size_t saved;          /* how many of them are in `copy` */
} copy_floor_side;

enum { COPY_FLOOR_BYTES = 64 * 1024 };

/* Suspends `from` and resumes `to`, which must have been suspended by a
 * switch or a start. */
void copy_floor_switch(copy_floor_side *from, copy_floor_side *to);

/* Suspends `from` right here and runs run(argument) just below, as `to`;
 * run must never return (it switches away for good instead). */
void copy_floor_start(copy_floor_side *from, copy_floor_side *to,
                      void (*run)(void *), void *argument);
#endif

#endif /* COPY_FLOOR_H */
