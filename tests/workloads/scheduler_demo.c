/*
 * scheduler_demo.c -- a workload of many greenlets on the C engine, and a
 * live view of it read from the engine's registry by another thread.
 *
 * The main greenlet runs a round-robin scheduler over worker greenlets.
 * Each worker does rounds of "work" at a random stack depth (so its saved
 * stack varies), yields to the scheduler, now and then spawns a child
 * worker, and finishes after a random number of rounds. Two threads run
 * such schedulers at once. A monitor thread walks the registry once a
 * second, as gltop will, and prints what it sees: greenlets per state,
 * heap-held stack bytes and switches per second.
 *
 *   scheduler-demo [--seconds N] [--workers N]
 */
#include "glengine.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 20000

struct scheduler {
    gl_greenlet *main;
    gl_greenlet *ready[MAX_WORKERS];
    size_t count;
    size_t target;        /* workers to keep running */
    unsigned random_state;
    unsigned long finished;
};

static atomic_int stop_requested;

static unsigned next_random(struct scheduler *s)
{
    s->random_state = s->random_state * 1103515245u + 12345u;
    return s->random_state >> 8;
}

static gl_message worker(void *argument, gl_message first);

static void spawn(struct scheduler *s)
{
    gl_greenlet *g;
    if (s->count == MAX_WORKERS)
        return;
    int error = gl_create(&g, worker, s, s->main);
    if (error) {
        fprintf(stderr, "gl_create: %s\n", gl_strerror(error));
        return;
    }
    s->ready[s->count++] = g;
}

/* Works `depth` frames down, then yields: the stack the scheduler's
 * switch has to save is about depth * 256 bytes. */
static __attribute__((noinline)) void work_and_yield(struct scheduler *s,
                                                     unsigned depth)
{
    volatile char frame[256];
    memset((char *)frame, (int)depth, sizeof frame);
    if (depth > 0) {
        work_and_yield(s, depth - 1);
    } else {
        int error = gl_switch(s->main, (gl_message){NULL, 0}, NULL);
        if (error)
            fprintf(stderr, "gl_switch: %s\n", gl_strerror(error));
    }
    if (frame[0] != (char)depth)
        abort(); /* the stack was not restored byte for byte */
}

static gl_message worker(void *argument, gl_message first)
{
    struct scheduler *s = argument;
    (void)first;
    unsigned rounds = 10 + next_random(s) % 200;
    for (unsigned i = 0; i < rounds && !atomic_load(&stop_requested); i++) {
        work_and_yield(s, next_random(s) % 24);
        if (next_random(s) % 50 == 0 && s->count < 2 * s->target)
            spawn(s); /* a child, up to twice the usual number */
    }
    return (gl_message){NULL, 0};
}

/* Round-robin over the ready workers, replacing the finished ones. */
static void *run_scheduler(void *argument)
{
    struct scheduler *s = argument;
    s->main = gl_current();
    for (size_t i = 0; i < s->target; i++)
        spawn(s);
    while (!atomic_load(&stop_requested)) {
        for (size_t i = 0; i < s->count;) {
            gl_greenlet *g = s->ready[i];
            gl_switch(g, (gl_message){NULL, 0}, NULL);
            if (gl_state_of(g) == GL_STATE_DEAD) {
                gl_destroy(g);
                s->ready[i] = s->ready[--s->count];
                s->finished++;
                if (s->count < s->target && !atomic_load(&stop_requested))
                    spawn(s);
            } else {
                i++;
            }
        }
    }
    for (size_t i = 0; i < s->count; i++)
        gl_destroy(s->ready[i]); /* kills the suspended ones */
    return NULL;
}

struct census {
    size_t by_state[4];
    size_t saved_bytes;
    uint64_t switches;
};

static int count_thread(const gl_thread_info *thread, void *context)
{
    struct census *census = context;
    census->switches += thread->switch_serial;
    return 0;
}

static int count_greenlet(const gl_greenlet_info *info, void *context)
{
    struct census *census = context;
    census->by_state[info->state]++;
    census->saved_bytes += info->saved_bytes;
    return 0;
}

static void print_census(unsigned second, const struct census *now,
                         uint64_t switches_per_second)
{
    printf("%3us  new %6zu  running %2zu  suspended %6zu  dead %5zu  "
           "heap-held stack %8.1f KiB  switches/s %9llu\n",
           second, now->by_state[GL_STATE_NEW],
           now->by_state[GL_STATE_RUNNING],
           now->by_state[GL_STATE_SUSPENDED], now->by_state[GL_STATE_DEAD],
           now->saved_bytes / 1024.0,
           (unsigned long long)switches_per_second);
    fflush(stdout);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: scheduler-demo [--seconds N] [--workers N]\n"
            "  Runs two threads of round-robin schedulers over worker\n"
            "  greenlets and prints, once a second, what the engine's\n"
            "  registry shows. Defaults: 5 seconds, 1000 workers per thread.\n");
}

int main(int argc, char **argv)
{
    unsigned seconds = 5, workers = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
            workers = (unsigned)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (workers == 0 || workers > MAX_WORKERS / 2) {
        fprintf(stderr, "--workers must be between 1 and %d\n",
                MAX_WORKERS / 2);
        return 2;
    }

    static struct scheduler schedulers[2];
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        schedulers[i].target = workers;
        schedulers[i].random_state = 7u + (unsigned)i;
        if (pthread_create(&threads[i], NULL, run_scheduler, &schedulers[i])) {
            perror("pthread_create");
            return 1;
        }
    }
    printf("scheduler-demo: 2 threads x %u worker greenlets, %u s "
           "(pid %d)\n", workers, seconds, (int)getpid());
    uint64_t last_switches = 0;
    for (unsigned second = 1; second <= seconds; second++) {
        sleep(1);
        struct census census;
        memset(&census, 0, sizeof census);
        gl_registry_walk(count_thread, count_greenlet, &census);
        print_census(second, &census, census.switches - last_switches);
        last_switches = census.switches;
    }
    atomic_store(&stop_requested, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    printf("finished %lu + %lu workers; heap-held stack bytes now %zu\n",
           schedulers[0].finished, schedulers[1].finished,
           gl_process_saved_bytes());
    return gl_process_saved_bytes() == 0 ? 0 : 1;
}
