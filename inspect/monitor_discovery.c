/*
 * monitor_discovery.c -- finding monitor segments through /proc.
 *
 * A process publishes its greenlets in a memfd named "greenlet-monitor";
 * its fd shows in /proc/PID/fd as a link that reads
 * "/memfd:greenlet-monitor (deleted)". gl_monitor_find_processes lists the
 * processes that hold one; gl__monitor_locate finds the fd of one process
 * for gl_monitor_open (monitor_reader.c), with errors that tell why not.
 *
 * Listing /proc/PID/fd takes the same permission as ptrace's read mode: in
 * practice, processes of the same user. Others are left out of the list,
 * and reported as GL_EPERM by gl__monitor_locate. The calling process is
 * not skipped: whether to show itself is the caller's choice.
 *
 * Cost: one readlink per open fd of every process listed; a scan of a
 * machine with a thousand processes of a hundred fds takes milliseconds.
 */
#define _GNU_SOURCE
#include "glmonitor.h"
#include "monitor_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The number a /proc entry or fd entry names, or -1 if the name is not a
 * plain positive decimal that fits in an int. */
static long long parse_number(const char *name)
{
    long long value = 0;
    if (!*name)
        return -1;
    for (const char *c = name; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        value = value * 10 + (*c - '0');
        if (value > 0x7fffffff)
            return -1;
    }
    return value;
}

/* 1 if the fd called `name` in the open directory /proc/PID/fd is a
 * segment. A link that cannot be read (closed meanwhile) is not one. */
static int fd_is_segment(int fd_directory, const char *name)
{
    char link[sizeof GL__MONITOR_FD_LINK + 1];
    ssize_t length = readlinkat(fd_directory, name, link, sizeof link);
    return length == (ssize_t)sizeof GL__MONITOR_FD_LINK - 1 &&
           memcmp(link, GL__MONITOR_FD_LINK, (size_t)length) == 0;
}

int gl__monitor_open_error(int error, int otherwise)
{
    switch (error) {
    case EACCES:
    case EPERM:
        return GL_EPERM;
    case ENOMEM:
    case EMFILE:
    case ENFILE:
        return GL_ENOMEM;
    default:
        return otherwise;
    }
}

/* Error of opening a /proc directory, in GL_E terms. */
static int proc_error(int error)
{
    /* ENOENT, ESRCH: gone, or never was */
    return gl__monitor_open_error(error, GL_ENOPROCESS);
}

/* Finds the lowest fd of a segment in the fd directory `directory` (which
 * it closes). GL_ENOMONITOR if there is none. */
static int scan_fd_directory(DIR *directory, int *fd_number)
{
    int lowest = -1;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        long long number = parse_number(entry->d_name);
        if (number < 0 || (lowest >= 0 && number >= lowest))
            continue;
        if (fd_is_segment(dirfd(directory), entry->d_name))
            lowest = (int)number;
    }
    closedir(directory);
    if (lowest < 0)
        return GL_ENOMONITOR;
    *fd_number = lowest;
    return 0;
}

/* Opens the directory `path` relative to `base` (a directory fd, or
 * AT_FDCWD) for reading. NULL with errno set on failure. */
static DIR *open_directory(int base, const char *path)
{
    int fd = openat(base, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    DIR *directory = fdopendir(fd);
    if (!directory) {
        int error = errno;
        close(fd);
        errno = error;
    }
    return directory;
}

int gl__monitor_process_listed(int64_t pid)
{
    char path[32];
    snprintf(path, sizeof path, "/proc/%" PRId64, pid);
    return access(path, F_OK) == 0;
}

int gl__monitor_locate(int64_t pid, int *fd_number)
{
    if (pid <= 0 || pid > 0x7fffffff)
        return GL_ENOPROCESS;
    char path[40];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/fd", pid);
    DIR *directory = open_directory(AT_FDCWD, path);
    if (!directory)
        return proc_error(errno);
    int code = scan_fd_directory(directory, fd_number);
    /* An empty listing may also mean that the process has just ended. */
    if (code == GL_ENOMONITOR && !gl__monitor_process_listed(pid))
        return GL_ENOPROCESS;
    return code;
}

static int compare_pids(const void *left, const void *right)
{
    int64_t a = *(const int64_t *)left, b = *(const int64_t *)right;
    return (a > b) - (a < b);
}

int gl_monitor_find_processes(int64_t *pids, size_t capacity, size_t *count)
{
    if (!count || (!pids && capacity))
        return GL_EINVAL;
    *count = 0;
    /* Without /proc (not mounted) no process can be seen: none is listed. */
    DIR *proc = open_directory(AT_FDCWD, "/proc");
    if (!proc)
        return proc_error(errno) == GL_ENOMEM ? GL_ENOMEM : 0;
    int64_t *found = NULL;
    size_t found_count = 0, found_capacity = 0;
    int code = 0;
    struct dirent *entry;
    while ((entry = readdir(proc)) != NULL) {
        long long pid = parse_number(entry->d_name);
        if (pid <= 0)
            continue;
        char fd_path[32];
        snprintf(fd_path, sizeof fd_path, "%lld/fd", pid);
        DIR *fds = open_directory(dirfd(proc), fd_path);
        if (!fds && proc_error(errno) == GL_ENOMEM) {
            code = GL_ENOMEM; /* a list cut short would mislead */
            break;
        }
        int fd_number;
        if (!fds || scan_fd_directory(fds, &fd_number) != 0)
            continue; /* gone, not ours to look into, or no segment */
        if (found_count == found_capacity) {
            size_t grown = found_capacity ? 2 * found_capacity : 16;
            int64_t *bigger = realloc(found, grown * sizeof *found);
            if (!bigger) {
                code = GL_ENOMEM;
                break;
            }
            found = bigger;
            found_capacity = grown;
        }
        found[found_count++] = pid;
    }
    closedir(proc);
    if (code == 0) {
        if (found_count)
            qsort(found, found_count, sizeof *found, compare_pids);
        for (size_t i = 0; i < found_count && i < capacity; i++)
            pids[i] = found[i];
        *count = found_count;
    }
    free(found);
    return code;
}
