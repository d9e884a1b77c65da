/*
 * main.c -- the gltop command: options, then either the batch mode's loop
 * (sample, rebuild the model, print) or the screen (interactive.c).
 */
#define _GNU_SOURCE
#include "batch.h"
#include "collector.h"
#include "screen.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: gltop [-p PID] [-d SECONDS] [-B SECONDS]\n"
    "       gltop -b [-p PID] [-d SECONDS] [-B SECONDS] [-n ITERATIONS] [--json]\n"
    "\n"
    "Shows the live greenlets of a running process, read from the monitor\n"
    "segment that every process using greenlets publishes (see man gltop and\n"
    "docs/monitor.md): per greenlet its id, state, thread, heap-held stack\n"
    "bytes and peak, switches per second, time since it last ran, flags,\n"
    "name (indented under its parent's) and where it is. Without -p, it\n"
    "starts with a picker of the processes you may watch.\n"
    "\n"
    "  -p, --pid PID          the process to watch\n"
    "  -d, --delay SECONDS    refresh interval (default 1)\n"
    "  -B, --block SECONDS    flag B on a greenlet that has run this long\n"
    "                         without a switch, its thread busy (default 1)\n"
    "  -b, --batch            print to standard output instead of a screen;\n"
    "                         without -p, the processes one could watch\n"
    "  -n, --iterations N     with -b: stop after N refreshes (default: run\n"
    "                         until the process exits; 1 without -p)\n"
    "      --json             with -b: one JSON object per line\n"
    "  -h, --help             this text\n"
    "\n"
    "Keys: arrows, PgUp/PgDn, Home/End move; Enter shows a greenlet's detail\n"
    "(stack region, flags, Python and native stacks); t tree/flat; s, < and\n"
    "> change the sort column, I inverts it; / filters; Space pauses; Esc\n"
    "goes back (to the picker from the list); h or ? helps; q quits.\n"
    "\n"
    "examples:\n"
    "  gltop                           pick a process, then watch it\n"
    "  gltop -p 4242 -d 0.5            watch process 4242, twice a second\n"
    "  gltop -b -p 4242 -n 1           one look at process 4242, as text\n"
    "  gltop -b -p 4242 --json         JSON lines until it exits\n"
    "  gltop -b                        the processes that use greenlets\n"
    "\n"
    "exit status: 0 success, 2 bad arguments, 3 no such process, 4 the\n"
    "process does not use greenlet, 5 permission denied, 6 another layout\n"
    "version, 7 corrupt segment or no answer, 1 anything else.\n";

struct options {
    long long pid;
    double delay;
    double block;
    long iterations; /* 0: until the process exits */
    int batch, json;
};

static int exit_status(int error)
{
    switch (error) {
    case GL_ENOPROCESS:
        return 3;
    case GL_ENOMONITOR:
        return 4;
    case GL_EPERM:
        return 5;
    case GL_EVERSION:
        return 6;
    case GL_ECORRUPT:
    case GL_ETIMEDOUT:
        return 7;
    default:
        return 1;
    }
}

/* Says what is wrong, with the usage lines (the rest is in --help). */
static int bad_arguments(const char *message)
{
    const char *end = strstr(usage, "\n\n");
    fprintf(stderr, "gltop: %s\n%.*s\n(gltop --help says more)\n", message,
            (int)(end - usage), usage);
    return 2;
}

/* The number in `text` if it is all of it, within [low, high] and, with
 * `whole`, an integer; *ok says whether it is. */
static double number(const char *text, double low, double high, int whole,
                     int *ok)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    *ok = errno == 0 && end != text && *end == '\0' && value >= low &&
          value <= high && (!whole || value == (double)(long long)value);
    return value;
}

static int parse(int argc, char **argv, struct options *o)
{
    static const struct option long_options[] = {
        {"pid", required_argument, NULL, 'p'},
        {"delay", required_argument, NULL, 'd'},
        {"block", required_argument, NULL, 'B'},
        {"batch", no_argument, NULL, 'b'},
        {"iterations", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    *o = (struct options){.pid = -1, .delay = 1.0, .block = 1.0};
    int option, ok = 1;
    opterr = 0; /* bad_arguments says it, once */
    while ((option = getopt_long(argc, argv, "p:d:B:bn:h", long_options,
                                 NULL)) != -1) {
        switch (option) {
        case 'p':
            o->pid = (long long)number(optarg, 1, 4194304, 1, &ok);
            if (!ok)
                return bad_arguments("-p needs a process id");
            break;
        case 'd':
            o->delay = number(optarg, 0.05, 3600, 0, &ok);
            if (!ok)
                return bad_arguments("-d needs seconds, 0.05 to 3600");
            break;
        case 'B':
            o->block = number(optarg, 0.01, 86400, 0, &ok);
            if (!ok)
                return bad_arguments("-B needs seconds, 0.01 to 86400");
            break;
        case 'b':
            o->batch = 1;
            break;
        case 'n':
            o->iterations = (long)number(optarg, 1, 1e9, 1, &ok);
            if (!ok)
                return bad_arguments("-n needs a whole count, at least 1");
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default: {
            char message[64];
            if (optopt)
                snprintf(message, sizeof message, "-%c: %s", optopt,
                         strchr("pdBn", optopt) ? "needs a value"
                                                : "unknown option");
            else
                snprintf(message, sizeof message, "%s: unknown option",
                         argv[optind - 1]);
            return bad_arguments(message);
        }
        }
    }
    if (optind < argc)
        return bad_arguments("unexpected argument");
    if (!o->batch && (o->iterations || o->json))
        return bad_arguments("-n and --json go with -b");
    return 0;
}

static void pause_for(double seconds)
{
    struct timespec pause = {(time_t)seconds,
                             (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
        continue;
}

/* gltop -b without -p: the picker's list, -n times (default once). */
static int batch_processes(const struct options *o)
{
    for (long i = 0; i < (o->iterations ? o->iterations : 1); i++) {
        if (i)
            pause_for(o->delay);
        gltop_process *processes;
        size_t count;
        int error = gltop_scan_processes(&processes, &count, 1000);
        if (error) {
            fprintf(stderr, "gltop: %s\n", gl_strerror(error));
            return exit_status(error);
        }
        gltop_batch_processes(processes, count, o->json, stdout);
        free(processes);
    }
    return 0;
}

static int batch(const struct options *o)
{
    if (o->pid < 0)
        return batch_processes(o);
    gltop_collector collector;
    gltop_model *model;
    int error = gltop_collector_open(&collector, o->pid);
    if (error) {
        fprintf(stderr, "gltop: pid %lld: %s\n", o->pid, gl_strerror(error));
        return exit_status(error);
    }
    if ((error = gltop_model_create(&model)) != 0) {
        gltop_collector_close(&collector);
        fprintf(stderr, "gltop: %s\n", gl_strerror(error));
        return 1;
    }
    gltop_model_set_block_threshold(model, (uint64_t)(o->block * 1e9));
    int wait_ms = o->delay < 2 ? 2000 : (int)(o->delay * 1000);
    for (long i = 0; !o->iterations || i < o->iterations; i++) {
        if (i)
            pause_for(o->delay);
        error = gltop_collector_sample(&collector, model, wait_ms, NULL);
        const char *ended = gltop_collector_ended(error);
        if (ended && i) {
            fprintf(stderr, "gltop: pid %lld %s\n", o->pid, ended);
            error = 0;
            break;
        }
        if (error)
            break;
        if (o->json)
            gltop_batch_json(model, o->pid, collector.command, stdout);
        else
            gltop_batch_text(model, o->pid, collector.command, stdout);
    }
    if (error)
        fprintf(stderr, "gltop: pid %lld: %s\n", o->pid, gl_strerror(error));
    gltop_model_destroy(model);
    gltop_collector_close(&collector);
    return error ? exit_status(error) : 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse(argc, argv, &o);
    if (status)
        return status;
    if (o.batch)
        return batch(&o);
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        fprintf(stderr, "gltop: the screen needs a terminal; -b prints "
                        "without one\n");
        return 2;
    }
    int error = gltop_screen_run(o.pid > 0 ? o.pid : 0, o.delay,
                                 (uint64_t)(o.block * 1e9));
    return error ? exit_status(error) : 0;
}
