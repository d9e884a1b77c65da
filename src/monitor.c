/*
 * monitor.c -- the monitor segment's life in a process: made when the
 * process creates its first greenlet, written by one background thread
 * while readers are attached, answered to when readers ask for stacks,
 * and left behind by fork() (a child makes its own). The layout and the
 * protocol are in monitor_layout.h; publications are built in
 * monitor_publication.c.
 *
 * Why a thread: a reader must get answers from a process that is blocked
 * (a server waiting in epoll) as well as from a busy one, without
 * signals, ptrace or a restart. The thread sleeps on a futex word in the
 * segment, which readers change and wake; with no reader attached it
 * sleeps without a timeout and costs nothing. Switches never look at the
 * monitor at all: the thread reads the registry as any other thread may
 * (gl_registry_walk). So "on with no reader" costs the hot path nothing,
 * and "on with a reader" costs it only the registry walk's brief lock
 * (never taken by switches) and whatever the runtime's enter() costs (the
 * GIL, for CPython).
 *
 * The reader area of the segment is written by other processes: every
 * value read from it (heartbeat, wake word, request) is treated as
 * untrusted and used only in ways that any value makes safe.
 */
#define _GNU_SOURCE
#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Publications come at most this often, however often readers wake us;
 * and the pause between two is at least PUBLISH_DUTY times as long as the
 * last one took, so that readers never take more than a tenth of the
 * process (in CPython, of its GIL), however many greenlets it has. */
#define MIN_PUBLISH_INTERVAL_NS (50u * 1000000u)
#define PUBLISH_DUTY 10u
/* After each wake, the thread rests this long: a reader that wakes it in
 * a loop gets at most this rate of work out of the process. */
#define WAKE_REST_NS (2u * 1000000u)

atomic_int gl__monitor_state = GL__MONITOR_NOT_STARTED;
static pthread_mutex_t start_mutex = PTHREAD_MUTEX_INITIALIZER;
static const gl_monitor_runtime *_Atomic installed_runtime;
/* Owned by the monitor's thread once it runs. */
static gl__monitor_segment segment = {.fd = -1};
static pthread_mutex_t segment_mutex = PTHREAD_MUTEX_INITIALIZER;

uint64_t gl__monitor_clock_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

void gl_monitor_set_runtime(const gl_monitor_runtime *runtime)
{
    atomic_store(&installed_runtime, runtime);
}

void gl__monitor_segment_lock(void)
{
    pthread_mutex_lock(&segment_mutex);
}

void gl__monitor_segment_unlock(void)
{
    pthread_mutex_unlock(&segment_mutex);
}

int gl_monitor_enabled(void)
{
    return atomic_load(&gl__monitor_state) == GL__MONITOR_RUNNING;
}

/* The monitor thread's gettid(), 0 while there is none. */
static _Atomic int64_t monitor_thread_id;

int64_t gl_monitor_thread_os_id(void)
{
    return atomic_load(&monitor_thread_id);
}

/* ------------------------------------------------------------- segment */

int gl__monitor_segment_reserve(gl__monitor_segment *s, size_t size)
{
    if (size <= s->size)
        return 0;
    size_t grown = s->size ? s->size : 65536;
    while (grown < size)
        grown += grown / 2;
    grown = (grown + 4095) & ~(size_t)4095;
    if (ftruncate(s->fd, (off_t)grown) < 0)
        return GL_ENOMEM;
    void *mapping = s->header
        ? mremap(s->header, s->size, grown, MREMAP_MAYMOVE)
        : mmap(NULL, grown, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
    if (mapping == MAP_FAILED)
        return GL_ENOMEM; /* the file stays larger than the mapping */
    s->header = mapping;
    s->size = grown;
    return 0;
}

/* Makes the memfd, readable and writable by its owner only (the kernel
 * lets only that user, or root, open it through /proc in any case), and
 * writes the header's constant part. The file is sealed against
 * shrinking: a process that could cut it short under our mapping would
 * kill us with SIGBUS at our next write. */
static int make_segment(gl__monitor_segment *s)
{
    s->fd = memfd_create(GL_MONITOR_MEMFD_NAME,
                         MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (s->fd < 0)
        return GL_ENOMEM;
    s->answer_offset = 4096; /* the header's page is the futex page */
    if (fchmod(s->fd, 0600) < 0 ||
        fcntl(s->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0 ||
        gl__monitor_segment_reserve(
            s, s->answer_offset + GL_MONITOR_ANSWER_CAPACITY) < 0) {
        close(s->fd);
        s->fd = -1;
        return GL_ENOMEM;
    }
    gl_monitor_header *header = s->header;
    header->layout_version = GL_MONITOR_LAYOUT_VERSION;
    header->header_size = sizeof *header;
    header->pid = getpid();
    header->thread_record_size = sizeof(gl_monitor_thread);
    header->greenlet_record_size = sizeof(gl_monitor_greenlet);
    header->answer_offset = s->answer_offset;
    header->answer_capacity = GL_MONITOR_ANSWER_CAPACITY;
    header->segment_size = sizeof *header;
    /* The magic last: a reader that sees it sees the rest. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy(header->magic, GL_MONITOR_MAGIC, sizeof header->magic);
    return 0;
}

static void unmake_segment(gl__monitor_segment *s)
{
    if (s->header)
        munmap(s->header, s->size);
    if (s->fd >= 0)
        close(s->fd);
    *s = (gl__monitor_segment){.fd = -1};
}

/* ------------------------------------------------------------- answers */

static void write_answer(gl__monitor_segment *s, uint64_t ticket,
                         uint64_t id, int status, const char *text,
                         size_t size)
{
    gl__monitor_segment_lock();
    gl_monitor_header *header = s->header;
    __atomic_store_n(&header->answer_sequence, ++s->answer_sequence,
                     __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    memcpy((char *)header + s->answer_offset, text, size);
    header->answer_ticket = ticket;
    header->answer_greenlet_id = id;
    header->answer_status = (uint32_t)status;
    header->answer_size = (uint32_t)size;
    __atomic_store_n(&header->answer_sequence, ++s->answer_sequence,
                     __ATOMIC_RELEASE);
    gl__monitor_segment_unlock();
}

/* Answers the request in the reader area, if it is new. */
static void answer_request(gl__monitor_segment *s, uint64_t *last_ticket)
{
    gl_monitor_header *header = s->header;
    uint64_t ticket =
        __atomic_load_n(&header->request_ticket, __ATOMIC_ACQUIRE);
    if (ticket == 0 || ticket == *last_ticket)
        return;
    *last_ticket = ticket;
    uint64_t id = __atomic_load_n(&header->request_greenlet_id,
                                  __ATOMIC_RELAXED);
    unsigned kinds = __atomic_load_n(&header->request_kinds, __ATOMIC_RELAXED);

    static const char unavailable[] =
        "note\tno runtime in this process answers stack requests\n";
    const gl_monitor_runtime *runtime = atomic_load(&installed_runtime);
    size_t capacity = GL_MONITOR_ANSWER_CAPACITY;
    char *buffer = malloc(capacity);
    int status = GL_MONITOR_ANSWER_UNAVAILABLE;
    size_t size = 0;
    if (buffer && runtime && runtime->answer && runtime->enter &&
        runtime->enter(runtime->context) == 0) {
        status = runtime->answer(id, kinds, buffer, capacity, &size,
                                 runtime->context);
        if (runtime->leave)
            runtime->leave(runtime->context);
        if (size > capacity)
            size = capacity;
    }
    if (status == GL_MONITOR_ANSWER_UNAVAILABLE || !buffer)
        write_answer(s, ticket, id, GL_MONITOR_ANSWER_UNAVAILABLE,
                     unavailable, sizeof unavailable - 1);
    else
        write_answer(s, ticket, id, status, buffer, size);
    free(buffer);
}

/* -------------------------------------------------------------- thread */

/* Whether a reader's heartbeat is recent. Any value may be there: one in
 * the future counts only if it is near. */
static int reader_attached(const gl_monitor_header *header, uint64_t now)
{
    uint64_t heartbeat =
        __atomic_load_n(&header->reader_heartbeat_ns, __ATOMIC_RELAXED);
    uint64_t timeout = (uint64_t)GL_MONITOR_READER_TIMEOUT_MS * 1000000u;
    if (heartbeat == 0)
        return 0;
    return heartbeat <= now ? now - heartbeat < timeout
                            : heartbeat - now < timeout;
}

/* Sleeps until the wake word differs from `seen` (or a reader wakes us),
 * or `timeout_ns` passes (0: no timeout). */
static void wait_for_wake(gl_monitor_header *header, uint32_t seen,
                          uint64_t timeout_ns)
{
    struct timespec timeout = {(time_t)(timeout_ns / 1000000000u),
                               (long)(timeout_ns % 1000000000u)};
    syscall(SYS_futex, &header->wake, FUTEX_WAIT, seen,
            timeout_ns ? &timeout : NULL, NULL, 0);
}

static void rest(uint64_t ns)
{
    struct timespec pause = {0, (long)ns};
    nanosleep(&pause, NULL);
}

static void *monitor_main(void *unused)
{
    (void)unused;
    atomic_store(&monitor_thread_id, (int64_t)syscall(SYS_gettid));
    uint64_t last_publication = 0, last_ticket = 0;
    uint64_t interval = MIN_PUBLISH_INTERVAL_NS;
    for (;;) {
        gl_monitor_header *header = segment.header; /* moves as it grows */
        uint32_t seen = __atomic_load_n(&header->wake, __ATOMIC_ACQUIRE);
        uint64_t now = gl__monitor_clock_ns();
        uint64_t timeout = 0; /* no reader: sleep until one wakes us */
        if (reader_attached(header, now)) {
            uint64_t since = now - last_publication;
            timeout = (uint64_t)GL_MONITOR_REFRESH_MS * 1000000u;
            if (since >= interval) {
                gl__monitor_publish(&segment, atomic_load(&installed_runtime));
                last_publication = now;
                uint64_t took = gl__monitor_clock_ns() - now;
                interval = took * PUBLISH_DUTY > MIN_PUBLISH_INTERVAL_NS
                               ? took * PUBLISH_DUTY
                               : MIN_PUBLISH_INTERVAL_NS;
            } else if (interval - since < timeout) {
                /* Woken too soon after the last one: publish as soon as
                 * the interval allows, not a whole refresh period later. */
                timeout = interval - since;
            }
        }
        answer_request(&segment, &last_ticket);
        wait_for_wake(segment.header, seen, timeout);
        rest(WAKE_REST_NS);
    }
    return NULL;
}

/* "0", "off", "no" or "false" in GREENLET_MONITOR turn the monitor off. */
static int turned_off_by_environment(void)
{
    const char *value = getenv("GREENLET_MONITOR");
    if (!value)
        return 0;
    static const char *const off[] = {"0", "off", "no", "false"};
    for (size_t i = 0; i < sizeof off / sizeof *off; i++)
        if (strcasecmp(value, off[i]) == 0)
            return 1;
    return 0;
}

/* Starts the thread with every signal blocked, so that the process's
 * signals go to its own threads. */
static int start_thread(void)
{
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    pthread_t thread;
    int error = pthread_create(&thread, &attributes, monitor_main, NULL);
    pthread_attr_destroy(&attributes);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (error)
        return GL_ENOMEM;
    pthread_setname_np(thread, "greenlet-mon");
    return 0;
}

void gl__monitor_start_slow(void)
{
    pthread_mutex_lock(&start_mutex);
    if (atomic_load(&gl__monitor_state) == GL__MONITOR_NOT_STARTED) {
        int on = !turned_off_by_environment() && make_segment(&segment) == 0;
        if (on && start_thread() != 0) {
            unmake_segment(&segment);
            on = 0;
        }
        atomic_store(&gl__monitor_state, on ? GL__MONITOR_RUNNING : GL__MONITOR_OFF);
    }
    pthread_mutex_unlock(&start_mutex);
}

void gl__monitor_before_fork(void)
{
    pthread_mutex_lock(&start_mutex);
    gl__monitor_segment_lock();
}

void gl__monitor_after_fork_in_parent(void)
{
    gl__monitor_segment_unlock();
    pthread_mutex_unlock(&start_mutex);
}

void gl__monitor_after_fork_in_child(void)
{
    pthread_mutex_init(&start_mutex, NULL);
    pthread_mutex_init(&segment_mutex, NULL);
    /* The mapping and the file are the parent's: writing them would
     * garble its publications. The thread did not come along. */
    unmake_segment(&segment);
    atomic_store(&monitor_thread_id, 0);
    if (atomic_load(&gl__monitor_state) == GL__MONITOR_RUNNING)
        atomic_store(&gl__monitor_state, GL__MONITOR_NOT_STARTED);
}
