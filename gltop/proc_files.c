/*
 * proc_files.c -- gltop's reads of /proc (proc_files.h).
 *
 * /proc/PID/task/TID/stat is "tid (comm) state ppid ..." where comm is the
 * thread's name, which the program chooses and which may hold spaces and
 * parentheses: the fields are counted from the last ')'. utime and stime
 * are fields 14 and 15 of the whole line, in clock ticks.
 *
 * /proc/PID/task/TID/status has "NSpid:\tA\tB...": the thread's id in
 * each pid namespace from ours inwards, so the last is the one the
 * process itself sees.
 */
#define _GNU_SOURCE
#include "proc_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads at most size - 1 bytes of `path` into out, terminated; returns
 * how many, or -1. */
static ssize_t read_small_file(const char *path, char *out, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t used = 0;
    while (used + 1 < size) {
        ssize_t n = read(fd, out + used, size - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    out[used] = '\0';
    return (ssize_t)used;
}

void gltop_read_command(int64_t pid, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/cmdline", pid);
    ssize_t n = read_small_file(path, out, size);
    if (n < 0)
        n = 0;
    for (ssize_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            out[i] = ' ';
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    if (!n)
        snprintf(out, size, "?");
}

int gltop_read_thread_cpu(int64_t pid, int64_t tid, uint64_t *cpu_ns)
{
    char path[96], stat[1024];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/task/%" PRId64 "/stat",
             pid, tid);
    if (read_small_file(path, stat, sizeof stat) <= 0)
        return -1;
    char *after_name = strrchr(stat, ')');
    if (!after_name)
        return -1;
    /* After ") " come fields 3 (state) onwards: utime is the 12th. */
    unsigned long long utime, stime;
    if (sscanf(after_name + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
               &utime, &stime) != 2)
        return -1;
    long ticks = sysconf(_SC_CLK_TCK);
    if (ticks <= 0)
        return -1;
    *cpu_ns = (uint64_t)(utime + stime) * (1000000000ull / (uint64_t)ticks);
    return 0;
}

int64_t gltop_outer_tid(int64_t pid, int64_t inner_tid)
{
    char path[96], status[4096];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/task", pid);
    DIR *tasks = opendir(path);
    if (!tasks)
        return -1;
    int64_t found = -1;
    for (struct dirent *task; found < 0 && (task = readdir(tasks));) {
        if (task->d_name[0] < '1' || task->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%" PRId64 "/task/%.20s/status",
                 pid, task->d_name);
        if (read_small_file(path, status, sizeof status) <= 0)
            continue;
        const char *line = strstr(status, "\nNSpid:");
        if (!line)
            continue;
        long long last = -1, value;
        int used;
        for (line += 7; sscanf(line, "%lld%n", &value, &used) == 1;
             line += used)
            last = value;
        if (last == inner_tid)
            found = strtoll(task->d_name, NULL, 10);
    }
    closedir(tasks);
    return found;
}
