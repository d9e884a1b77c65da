/*
 * main.c -- the gltop command: options, then the one main loop (sample,
 * rebuild the model, draw). For now only the batch mode (-b) draws; the
 * interactive screen is the rest of issue 5 and says so when asked for.
 */
#define _GNU_SOURCE
#include "batch.h"
#include "collector.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
    "usage: gltop -b -p PID [-d SECONDS] [-n ITERATIONS] [--json]\n"
    "\n"
    "Shows the live greenlets of a running process, read from the monitor\n"
    "segment that every process using greenlets publishes (see\n"
    "docs/monitor.md): per greenlet its id (indented under its parent),\n"
    "state, thread, heap-held stack bytes and peak, switches per second,\n"
    "time since it last ran, name and where it is.\n"
    "\n"
    "  -p, --pid PID          the process to watch\n"
    "  -d, --delay SECONDS    refresh interval (default 1)\n"
    "  -b, --batch            print to standard output instead of a screen\n"
    "  -n, --iterations N     with -b: stop after N refreshes (default: run\n"
    "                         until the process exits)\n"
    "      --json             with -b: one JSON object per line\n"
    "  -h, --help             this text\n"
    "\n"
    "The interactive screen (and the process picker without -p) is not\n"
    "built yet: use -b.\n"
    "\n"
    "examples:\n"
    "  gltop -b -p 4242 -n 1           one look at process 4242\n"
    "  gltop -b -p 4242 -d 0.5 --json  JSON lines twice a second\n"
    "\n"
    "exit status: 0 success, 2 bad arguments, 3 no such process, 4 the\n"
    "process does not use greenlet, 5 permission denied, 6 another layout\n"
    "version, 7 corrupt segment or no answer, 1 anything else.\n";

struct options {
    long long pid;
    double delay;
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

static int bad_arguments(const char *message)
{
    fprintf(stderr, "gltop: %s\n%s", message, usage);
    return 2;
}

/* A number in `text`, whole and within [low, high], or -1 in *ok. */
static double number(const char *text, double low, double high, int *ok)
{
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    *ok = errno == 0 && end != text && *end == '\0' && value >= low &&
          value <= high;
    return value;
}

static int parse(int argc, char **argv, struct options *o)
{
    static const struct option long_options[] = {
        {"pid", required_argument, NULL, 'p'},
        {"delay", required_argument, NULL, 'd'},
        {"batch", no_argument, NULL, 'b'},
        {"iterations", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    *o = (struct options){.pid = -1, .delay = 1.0};
    int option, ok = 1;
    while ((option = getopt_long(argc, argv, "p:d:bn:h", long_options,
                                 NULL)) != -1) {
        switch (option) {
        case 'p':
            o->pid = (long long)number(optarg, 1, 4194304, &ok);
            if (!ok || o->pid != number(optarg, 1, 4194304, &ok))
                return bad_arguments("-p needs a process id");
            break;
        case 'd':
            o->delay = number(optarg, 0.05, 3600, &ok);
            if (!ok)
                return bad_arguments("-d needs seconds, 0.05 to 3600");
            break;
        case 'b':
            o->batch = 1;
            break;
        case 'n':
            o->iterations = (long)number(optarg, 1, 1e9, &ok);
            if (!ok)
                return bad_arguments("-n needs a positive count");
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            exit(0);
        default:
            return bad_arguments("unknown option");
        }
    }
    if (optind < argc)
        return bad_arguments("unexpected argument");
    if (!o->batch)
        return bad_arguments("the interactive screen is not built yet");
    if (o->pid < 0)
        return bad_arguments("-b needs -p PID");
    return 0;
}

static void command_of(long long pid, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%lld/cmdline", pid);
    FILE *file = fopen(path, "rb");
    size_t n = file ? fread(out, 1, size - 1, file) : 0;
    if (file)
        fclose(file);
    for (size_t i = 0; i < n; i++)
        if (out[i] == '\0' || (unsigned char)out[i] < 0x20)
            out[i] = ' ';
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    if (!n)
        snprintf(out, size, "?");
}

static void pause_for(double seconds)
{
    struct timespec pause = {(time_t)seconds,
                             (long)((seconds - (time_t)seconds) * 1e9)};
    while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
        continue;
}

int main(int argc, char **argv)
{
    struct options o;
    int status = parse(argc, argv, &o);
    if (status)
        return status;
    gltop_collector collector;
    gltop_model *model;
    int error = gltop_collector_open(&collector, o.pid);
    if (error) {
        fprintf(stderr, "gltop: pid %lld: %s\n", o.pid, gl_strerror(error));
        return exit_status(error);
    }
    if ((error = gltop_model_create(&model)) != 0) {
        gltop_collector_close(&collector);
        fprintf(stderr, "gltop: %s\n", gl_strerror(error));
        return 1;
    }
    char command[256];
    command_of(o.pid, command, sizeof command);
    int wait_ms = o.delay < 2 ? 2000 : (int)(o.delay * 1000);
    for (long i = 0; !o.iterations || i < o.iterations; i++) {
        if (i)
            pause_for(o.delay);
        error = gltop_collector_sample(&collector, model, wait_ms, NULL);
        if (error == GL_ENOPROCESS && i) {
            fprintf(stderr, "gltop: pid %lld has exited\n", o.pid);
            error = 0;
            break;
        }
        if (error)
            break;
        if (o.json)
            gltop_batch_json(model, command, stdout);
        else
            gltop_batch_text(model, command, stdout);
    }
    if (error)
        fprintf(stderr, "gltop: pid %lld: %s\n", o.pid, gl_strerror(error));
    gltop_model_destroy(model);
    gltop_collector_close(&collector);
    return error ? exit_status(error) : 0;
}
