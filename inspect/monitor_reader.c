/*
 * monitor_reader.c -- a reader attached to one process's monitor segment:
 * opening it, telling the process we look (attach), copying whole
 * publications, and asking for one greenlet's stacks (request).
 *
 * The segment is another process's memfd, opened anew through
 * /proc/PID/fd/N. Every read is a pread() into our own memory: the file
 * may be truncated at any moment, and a mapping would then fault, where a
 * read only comes up short. The one mapping, of the first page, exists
 * only so that FUTEX_WAKE has an address for the `wake` word; FUTEX_WAKE
 * never touches memory, and nothing here dereferences the mapping.
 *
 * Copies follow the seqlock of monitor_layout.h: read publish_sequence
 * (with the header), copy, read it again; the copy is whole if both reads
 * saw the same even value. A torn copy, or a file shorter than the header
 * says, is retried after a millisecond, for at most COPY_PATIENCE_MS. A
 * copy that is whole but wrong (an absurd size) is GL_ECORRUPT at once.
 *
 * Writes (heartbeat, wake, request) are pwrite()s of the reader area only;
 * readers open the file read-write for them, or read-only when that is all
 * we may, and then cannot attach or request (GL_EPERM).
 *
 * Whether the process still lives comes from its /proc/PID directory,
 * opened with the segment: a zombie says so in its stat line, and once the
 * process is reaped nothing can be opened below that directory, even if
 * its pid is in use again. (A pidfd would do the same, but valgrind does
 * not know pidfd_open yet, and the tests run under it.)
 *
 * A reader is used by one thread at a time.
 */
#define _GNU_SOURCE
#include "glmonitor.h"
#include "monitor_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define COPY_PATIENCE_MS 1000 /* a read retries torn copies this long */
#define TORN_RETRY_MS 1       /* between two tries at a copy */
#define POLL_INTERVAL_MS 5    /* between looks for a publication or answer */
/* A waiting reader renews its heartbeat this often, well within the
 * process's timeout. */
#define HEARTBEAT_INTERVAL_MS (GL_MONITOR_READER_TIMEOUT_MS / 3)
#define WAKE_PAGE_SIZE 4096
#define NS_PER_MS 1000000u

_Static_assert(offsetof(gl_monitor_header, wake) < WAKE_PAGE_SIZE,
               "the wake word is in the first page");

struct gl_monitor_reader {
    int64_t pid;
    int segment;          /* our own open file of the memfd */
    int writable;         /* opened read-write: may attach and request */
    int process_directory;/* its /proc/PID */
    int fd_number;        /* the segment's number among the process's fds */
    dev_t segment_device; /* and which file it is, to see that it still */
    ino_t segment_inode;  /* holds it (an exec closes it) */
    void *wake_page;      /* only for FUTEX_WAKE's address; NULL if none */
    uint64_t attached_ns; /* when the heartbeat was last written */
    uint64_t requests;    /* tickets made, part of each new ticket */
    unsigned char *copy;  /* the last copy of the segment, reused */
    size_t copy_capacity;
};

#define FIELD_OFFSET(field) offsetof(gl_monitor_header, field)

static uint64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* Reads up to `size` bytes at `offset`; returns how many it read: fewer
 * when the file ends first (or on an error, which is treated the same). */
static size_t read_at(int fd, void *buffer, size_t size, uint64_t offset)
{
    size_t done = 0;
    while (done < size) {
        ssize_t got = pread(fd, (char *)buffer + done, size - done,
                            (off_t)(offset + done));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        done += (size_t)got;
    }
    return done;
}

static int write_at(int fd, const void *buffer, size_t size, uint64_t offset)
{
    size_t done = 0;
    while (done < size) {
        ssize_t put = pwrite(fd, (const char *)buffer + done, size - done,
                             (off_t)(offset + done));
        if (put < 0 && errno == EINTR)
            continue;
        if (put < 0)
            return (errno == EPERM || errno == EACCES || errno == EBADF)
                       ? GL_EPERM
                       : GL_ENOMEM; /* ENOSPC, ENOMEM: the memfd is full */
        done += (size_t)put;
    }
    return 0;
}

/* 1 if the 64-bit field at `offset` still holds `value`. */
static int field_still_is(const gl_monitor_reader *reader, size_t offset,
                          uint64_t value)
{
    uint64_t now;
    return read_at(reader->segment, &now, sizeof now, offset) == sizeof now &&
           now == value;
}

static int read_header(const gl_monitor_reader *reader,
                       gl_monitor_header *header)
{
    return read_at(reader->segment, header, sizeof *header, 0) ==
           sizeof *header;
}

/* 1 when the publisher has exited: reaped, or a zombie. Its stat line
 * reads "PID (COMMAND) STATE PPID ...", where COMMAND may itself hold
 * parentheses. A main thread that exited before the others shows as a
 * zombie too, but field 20, the count of threads, still counts them.
 * Costs an open and a read. */
/* The process's state letter (field 3 of /proc/PID/stat) into *state,
 * and the rest of that line from field 3 on into `line`; -1 if it has no
 * stat any more (gone), 0 if unreadable, 1 if read. */
static int read_state(const gl_monitor_reader *reader, char *line,
                      size_t size, const char **fields)
{
    int fd = openat(reader->process_directory, "stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ESRCH || errno == ENOENT ? -1 : 0;
    ssize_t got = read(fd, line, size - 1);
    close(fd);
    if (got <= 0)
        return -1;
    line[got] = '\0';
    const char *field = strrchr(line, ')');
    if (!field || field[1] != ' ' || !field[2])
        return 0;
    *fields = field + 2;
    return 1;
}

static int process_has_ended(const gl_monitor_reader *reader)
{
    char line[512];
    const char *field;
    int found = read_state(reader, line, sizeof line, &field);
    if (found <= 0)
        return found < 0;
    if (*field != 'Z' && *field != 'X')
        return 0;
    /* A zombie leader: ended only if it has no other thread (field 20). */
    for (int number = 3; number < 20 && field; number++) {
        field = strchr(field, ' ');
        if (field)
            field++;
    }
    return !field || strtol(field, NULL, 10) <= 1;
}

/* Whether the process still holds our segment at its fd: after an exec
 * (the memfd is close-on-exec) or a close, it does not, though its pid
 * lives on and our own file keeps the segment's last publication. */
static int process_holds_segment(const gl_monitor_reader *reader)
{
    char name[24];
    struct stat file;
    snprintf(name, sizeof name, "fd/%d", reader->fd_number);
    if (fstatat(reader->process_directory, name, &file, 0) == 0)
        return file.st_dev == reader->segment_device &&
               file.st_ino == reader->segment_inode;
    /* A zombie leader (its main thread exited, others live on) shows no
     * fds at all: nothing to tell, so it counts as holding it. */
    char line[512];
    const char *field;
    return read_state(reader, line, sizeof line, &field) == 1 &&
           *field == 'Z';
}

/* Sleeps `milliseconds`; returns 1 if the process has ended. */
static int pause_watching(const gl_monitor_reader *reader, int milliseconds)
{
    struct timespec pause = {0, (long)milliseconds * NS_PER_MS};
    nanosleep(&pause, NULL);
    return process_has_ended(reader);
}

/* ------------------------------------------------------------- opening */

/* 1 if our fd is a segment: /proc/PID/fd/N is looked up again when we
 * open it, and the process may have put another file at N meanwhile. */
static int is_segment_file(int fd)
{
    char path[40], link[sizeof GL__MONITOR_FD_LINK + 1];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(path, link, sizeof link);
    return length == (ssize_t)sizeof GL__MONITOR_FD_LINK - 1 &&
           memcmp(link, GL__MONITOR_FD_LINK, (size_t)length) == 0;
}

static int open_segment(gl_monitor_reader *reader)
{
    int fd_number;
    int code = gl__monitor_locate(reader->pid, &fd_number);
    if (code)
        return code;
    char path[64];
    snprintf(path, sizeof path, "/proc/%" PRId64 "/fd/%d", reader->pid,
             fd_number);
    reader->segment = open(path, O_RDWR | O_CLOEXEC);
    reader->writable = reader->segment >= 0;
    if (reader->segment < 0 && (errno == EACCES || errno == EPERM))
        reader->segment = open(path, O_RDONLY | O_CLOEXEC);
    if (reader->segment < 0) /* else the fd, or the process, went away */
        return gl__monitor_open_error(
            errno, gl__monitor_process_listed(reader->pid) ? GL_ENOMONITOR
                                                           : GL_ENOPROCESS);
    if (!is_segment_file(reader->segment))
        return GL_ENOMONITOR;
    struct stat file;
    if (fstat(reader->segment, &file) != 0)
        return GL_ENOMONITOR;
    reader->fd_number = fd_number;
    reader->segment_device = file.st_dev;
    reader->segment_inode = file.st_ino;
    /* Alive now, so the fds we looked at were those of the process whose
     * directory we hold, not of a newer one with the same number. */
    return process_has_ended(reader) ? GL_ENOPROCESS : 0;
}

int gl_monitor_open(gl_monitor_reader **out, int64_t pid)
{
    if (!out)
        return GL_EINVAL;
    *out = NULL;
    if (pid <= 0 || pid > INT_MAX)
        return GL_ENOPROCESS;
    gl_monitor_reader *reader = calloc(1, sizeof *reader);
    if (!reader)
        return GL_ENOMEM;
    reader->pid = pid;
    reader->segment = -1;
    char path[32];
    snprintf(path, sizeof path, "/proc/%" PRId64, pid);
    reader->process_directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int code = 0;
    if (reader->process_directory < 0)
        code = (errno == ENOMEM || errno == EMFILE || errno == ENFILE)
                   ? GL_ENOMEM
                   : GL_ENOPROCESS;
    if (!code)
        code = open_segment(reader);
    if (!code) {
        unsigned char header[sizeof(gl_monitor_header)];
        gl_monitor_header constants;
        size_t got = read_at(reader->segment, header, sizeof header, 0);
        code = gl__monitor_check_header(header, got, &constants);
    }
    if (code) {
        gl_monitor_close(reader);
        return code;
    }
    if (reader->writable) {
        void *page = mmap(NULL, WAKE_PAGE_SIZE, PROT_READ | PROT_WRITE,
                          MAP_SHARED, reader->segment, 0);
        reader->wake_page = page == MAP_FAILED ? NULL : page;
    }
    *out = reader;
    return 0;
}

void gl_monitor_close(gl_monitor_reader *reader)
{
    if (!reader)
        return;
    if (reader->wake_page)
        munmap(reader->wake_page, WAKE_PAGE_SIZE);
    if (reader->segment >= 0)
        close(reader->segment);
    if (reader->process_directory >= 0)
        close(reader->process_directory);
    free(reader->copy);
    free(reader);
}

/* ----------------------------------------------------------- attaching */

int gl_monitor_attach(gl_monitor_reader *reader)
{
    if (!reader)
        return GL_EINVAL;
    if (!reader->writable)
        return GL_EPERM;
    if (process_has_ended(reader))
        return GL_ENOPROCESS;
    /* A file cut shorter than the header would grow back under our
     * writes: leave it to its owner. (It may still shrink between this
     * look and the writes; then the writes make it longer, which the
     * process's next publication sets right.) */
    struct stat status;
    if (fstat(reader->segment, &status) < 0 ||
        (uint64_t)status.st_size < sizeof(gl_monitor_header))
        return GL_ECORRUPT;
    uint64_t now = monotonic_ns();
    int code = write_at(reader->segment, &now, sizeof now,
                        FIELD_OFFSET(reader_heartbeat_ns));
    if (code)
        return code;
    uint32_t wake = 0;
    read_at(reader->segment, &wake, sizeof wake, FIELD_OFFSET(wake));
    wake++;
    atomic_thread_fence(memory_order_release);
    code = write_at(reader->segment, &wake, sizeof wake, FIELD_OFFSET(wake));
    if (code)
        return code;
    reader->attached_ns = now;
    /* Not FUTEX_PRIVATE: the waiter is another process, which maps the
     * same file; the futex is keyed by the file's page. A failure (the
     * page is past the end of the file) only means the process finds out
     * at its next poll. */
    if (reader->wake_page)
        syscall(SYS_futex,
                (uint32_t *)((char *)reader->wake_page + FIELD_OFFSET(wake)),
                FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    return 0;
}

/* Renews the heartbeat when it is getting old, so that the process keeps
 * publishing (and answering) while we wait. Best effort. */
static void keep_attached(gl_monitor_reader *reader, uint64_t now)
{
    if (reader->writable &&
        now - reader->attached_ns >= HEARTBEAT_INTERVAL_MS * (uint64_t)NS_PER_MS)
        gl_monitor_attach(reader);
}

/* ------------------------------------------------------------- reading */

enum { COPY_TORN = 1 };

/* One try at copying a whole publication into reader->copy. Returns 0
 * with *size set, COPY_TORN when the process was writing or the file is
 * shorter than the publication says, GL_ECORRUPT when a whole header
 * gives an absurd size, or GL_ENOMEM. */
static int copy_once(gl_monitor_reader *reader, size_t *size)
{
    gl_monitor_header header;
    if (!read_header(reader, &header))
        return COPY_TORN;
    uint64_t sequence = header.publish_sequence;
    if (sequence & 1)
        return COPY_TORN;
    atomic_thread_fence(memory_order_acquire);
    if (header.segment_size > GL_MONITOR_MAX_SEGMENT_BYTES)
        return field_still_is(reader, FIELD_OFFSET(publish_sequence), sequence)
                   ? GL_ECORRUPT
                   : COPY_TORN;
    size_t segment_size = (size_t)header.segment_size;
    if (segment_size > reader->copy_capacity) {
        unsigned char *bigger = realloc(reader->copy, segment_size);
        if (!bigger)
            return GL_ENOMEM;
        reader->copy = bigger;
        reader->copy_capacity = segment_size;
    }
    size_t got = read_at(reader->segment, reader->copy, segment_size, 0);
    atomic_thread_fence(memory_order_acquire);
    if (!field_still_is(reader, FIELD_OFFSET(publish_sequence), sequence) ||
        got != segment_size)
        return COPY_TORN;
    *size = segment_size;
    return 0;
}

/* Copies a whole publication, retrying torn copies for `patience_ms`, and
 * parses it. */
static int copy_and_parse(gl_monitor_reader *reader, int patience_ms,
                          gl_monitor_snapshot **out)
{
    uint64_t deadline = monotonic_ns() + (uint64_t)patience_ms * NS_PER_MS;
    for (;;) {
        size_t size;
        int code = copy_once(reader, &size);
        if (code == 0)
            return gl_monitor_parse(reader->copy, size, out);
        if (code < 0)
            return code;
        if (monotonic_ns() >= deadline)
            return GL_ETIMEDOUT;
        if (pause_watching(reader, TORN_RETRY_MS))
            return GL_ENOPROCESS;
    }
}

/* What counts as fresh: taken after we attached, and not the publication
 * that was there before (when there was one to see). */
typedef struct freshness_mark {
    uint64_t attached_ns;
    int had_publications;
    uint64_t publications;
} freshness_mark;

static int is_fresh(const freshness_mark *mark, uint64_t published_ns,
                    uint64_t publications)
{
    return published_ns >= mark->attached_ns &&
           (!mark->had_publications || publications != mark->publications);
}

/* Attaches and waits, looking at the header every POLL_INTERVAL_MS, until
 * a fresh publication is there or `within_ms` has passed. Fills *mark.
 * Returns 0 either way, or GL_ENOPROCESS. Attaching is best effort: a
 * reader that may not write still sees publications that other readers
 * asked for. */
static int wait_for_fresh(gl_monitor_reader *reader, int within_ms,
                          freshness_mark *mark)
{
    gl_monitor_header header;
    mark->had_publications = read_header(reader, &header);
    mark->publications = mark->had_publications ? header.publications : 0;
    mark->attached_ns = monotonic_ns();
    if (gl_monitor_attach(reader) == GL_ENOPROCESS)
        return GL_ENOPROCESS;
    uint64_t deadline = mark->attached_ns + (uint64_t)within_ms * NS_PER_MS;
    for (;;) {
        if (read_header(reader, &header) && !(header.publish_sequence & 1) &&
            is_fresh(mark, header.published_ns, header.publications))
            return 0;
        uint64_t now = monotonic_ns();
        if (now >= deadline)
            return 0;
        keep_attached(reader, now);
        uint64_t left_ms = (deadline - now) / NS_PER_MS + 1;
        if (pause_watching(reader, left_ms < POLL_INTERVAL_MS
                                       ? (int)left_ms
                                       : POLL_INTERVAL_MS))
            return GL_ENOPROCESS;
    }
}

int gl_monitor_read(gl_monitor_reader *reader, int fresh_within_ms,
                    int *freshness, gl_monitor_snapshot **out)
{
    if (!reader || !out)
        return GL_EINVAL;
    *out = NULL;
    if (freshness)
        *freshness = 0;
    if (process_has_ended(reader))
        return GL_ENOPROCESS;
    if (!process_holds_segment(reader))
        return GL_ENOMONITOR;
    freshness_mark mark;
    int code = 0;
    if (fresh_within_ms > 0)
        code = wait_for_fresh(reader, fresh_within_ms, &mark);
    if (!code)
        code = copy_and_parse(reader, COPY_PATIENCE_MS, out);
    if (!code && (*out)->publications == 0) {
        /* Made, but never published (no reader has made it, or it could
         * not): its zeros are no view of the process. */
        gl_monitor_snapshot_free(*out);
        *out = NULL;
        return GL_ETIMEDOUT;
    }
    if (!code && fresh_within_ms > 0 && freshness &&
        !is_fresh(&mark, (*out)->published_ns, (*out)->publications))
        *freshness = GL_ETIMEDOUT;
    return code;
}

/* ---------------------------------------------------------- requesting */

/* splitmix64's finalizer: a bijection that scatters neighbouring inputs. */
static uint64_t scatter(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

/* A ticket that no other request is likely to use (time, pid, reader and
 * a count go into it), never 0 and never one of the two tickets in the
 * segment now. Four distinct inputs to a bijection give four distinct
 * values, of which at most three are refused. */
static uint64_t new_ticket(gl_monitor_reader *reader, uint64_t answered,
                           uint64_t requested)
{
    uint64_t base = monotonic_ns() ^ ((uint64_t)getpid() << 32) ^
                    (uint64_t)(uintptr_t)reader;
    uint64_t ticket = 0;
    for (int i = 0; i < 4; i++) {
        ticket = scatter(base + ++reader->requests);
        if (ticket != 0 && ticket != answered && ticket != requested)
            break;
    }
    return ticket;
}

enum { ANSWER_NOT_YET = 1 };

/* Takes the answer to `ticket` if it is there and whole: returns 0 with
 * the outputs set, ANSWER_NOT_YET, GL_ECORRUPT (a whole answer whose
 * status, size or place is impossible) or GL_ENOMEM. An answer to our
 * ticket for another greenlet means another reader rewrote the request
 * under us; it is not ours, and we wait on (and time out). */
static int take_answer(gl_monitor_reader *reader, uint64_t ticket,
                       uint64_t greenlet_id, char **text, size_t *size,
                       int *status)
{
    gl_monitor_header header;
    if (!read_header(reader, &header))
        return ANSWER_NOT_YET;
    uint64_t sequence = header.answer_sequence;
    if ((sequence & 1) || header.answer_ticket != ticket ||
        header.answer_greenlet_id != greenlet_id)
        return ANSWER_NOT_YET;
    atomic_thread_fence(memory_order_acquire);
    if (header.answer_status > GL_MONITOR_ANSWER_TRUNCATED ||
        header.answer_size > header.answer_capacity ||
        header.answer_offset < sizeof header ||
        header.answer_capacity > GL_MONITOR_MAX_SEGMENT_BYTES ||
        header.answer_offset >
            GL_MONITOR_MAX_SEGMENT_BYTES - header.answer_capacity)
        return field_still_is(reader, FIELD_OFFSET(answer_sequence), sequence)
                   ? GL_ECORRUPT
                   : ANSWER_NOT_YET;
    char *copy = malloc((size_t)header.answer_size + 1);
    if (!copy)
        return GL_ENOMEM;
    size_t got = read_at(reader->segment, copy, header.answer_size,
                         header.answer_offset);
    atomic_thread_fence(memory_order_acquire);
    if (!field_still_is(reader, FIELD_OFFSET(answer_sequence), sequence)) {
        free(copy);
        return ANSWER_NOT_YET;
    }
    if (got != header.answer_size) {
        free(copy);
        return GL_ECORRUPT; /* the area lies past the end of the file */
    }
    /* Tabs and newlines are the format; other control bytes could drive
     * the terminal of whoever prints the text. */
    for (size_t i = 0; i < got; i++) {
        unsigned char byte = (unsigned char)copy[i];
        if ((byte < 0x20 && byte != '\t' && byte != '\n') || byte == 0x7f)
            copy[i] = '?';
    }
    copy[got] = '\0';
    *text = copy;
    *size = got;
    *status = (int)header.answer_status;
    return 0;
}

int gl_monitor_request(gl_monitor_reader *reader, uint64_t greenlet_id,
                       unsigned kinds, int timeout_ms, char **text,
                       size_t *size, int *status)
{
    const unsigned known_kinds = GL_MONITOR_REQUEST_PYTHON_STACK |
                                 GL_MONITOR_REQUEST_NATIVE_STACK |
                                 GL_MONITOR_REQUEST_AUDIT |
                                 GL_MONITOR_REQUEST_WATCH;
    if (!reader || !text || !size || !status || timeout_ms <= 0 ||
        kinds == 0 || (kinds & ~known_kinds) ||
        ((kinds & GL_MONITOR_REQUEST_WATCH) &&
         !(kinds & GL_MONITOR_REQUEST_AUDIT))) /* a watch of the audit's */
        return GL_EINVAL;
    *text = NULL;
    *size = 0;
    *status = 0;
    if (!reader->writable)
        return GL_EPERM;
    if (process_has_ended(reader))
        return GL_ENOPROCESS;
    gl_monitor_header header;
    if (!read_header(reader, &header))
        return GL_ECORRUPT; /* cut short: writing would grow it */
    uint64_t ticket =
        new_ticket(reader, header.answer_ticket, header.request_ticket);
    uint32_t request_kinds = kinds;
    int code;
    if ((code = write_at(reader->segment, &greenlet_id, sizeof greenlet_id,
                         FIELD_OFFSET(request_greenlet_id))) ||
        (code = write_at(reader->segment, &request_kinds, sizeof request_kinds,
                         FIELD_OFFSET(request_kinds))))
        return code;
    /* The ticket last: a process that sees it sees the request. */
    atomic_thread_fence(memory_order_release);
    if ((code = write_at(reader->segment, &ticket, sizeof ticket,
                         FIELD_OFFSET(request_ticket))) ||
        (code = gl_monitor_attach(reader)))
        return code;
    uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ms * NS_PER_MS;
    for (;;) {
        code = take_answer(reader, ticket, greenlet_id, text, size, status);
        if (code != ANSWER_NOT_YET)
            return code;
        uint64_t now = monotonic_ns();
        if (now >= deadline)
            return GL_ETIMEDOUT;
        keep_attached(reader, now);
        if (pause_watching(reader, POLL_INTERVAL_MS))
            return GL_ENOPROCESS;
    }
}
