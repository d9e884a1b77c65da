/*
 * hazard_watch.c -- hardware write watchpoints on stack addresses that
 * something outside their greenlet keeps (glinspect.h, "watch").
 *
 * The audit finds words that point into a suspended greenlet's saved
 * stack; a watch catches the writes made through such a pointer. The CPU
 * has a few debug registers per thread (x86-64: 4) that trap after a
 * store to a chosen address; Linux lends them through perf events of
 * type PERF_TYPE_BREAKPOINT, one event per thread and address, counting
 * only that thread's stores. An event opened with sample_period 1 and
 * O_ASYNC sends its thread a signal (F_SETSIG, F_SETOWN_EX to that very
 * thread) after each store, before the next instruction, and libunwind
 * walks the writer's frames from the signal's context. The handler runs
 * on an alternate signal stack: on the writer's own stack its frames
 * could land on the watched address itself (the greenlet that runs uses
 * that region), and each of its own stores there would trap again, one
 * signal pending after each, forever.
 *
 * A watch is armed (its events enabled) only while the address is in the
 * saved part of its greenlet's stack -- the bytes meant are on the heap,
 * and the address holds another greenlet's data or nothing in use -- and
 * disarmed while the greenlet runs again. gl_watch_refresh, called after
 * switches (the CPython binding calls it when a watch exists), moves the
 * events to match.
 *
 * Not every store to the address while armed is a stale write: the
 * greenlet of the same thread that uses the address now writes its own
 * frames there. The handler sorts each store by what it can tell without
 * calling anything unsafe in a signal handler:
 *   another thread's store: the stale pointer, surely (recorded);
 *   the same thread's, from the holder's code (an instruction address of
 *   the writer's backtrace lies in the code of the object that holds the
 *   pointer): recorded;
 *   the same thread's otherwise: the running greenlet's own frames, most
 *   likely: counted only. Each trap costs a signal and a walk of the
 *   writer's frames (microseconds): after OWN_WRITES_LIMIT of them in one
 *   stretch swapped out the watch stops trapping that thread until the
 *   greenlet is swapped out again.
 * Stores by the kernel (a read() into the buffer) are not seen: events
 * exclude the kernel, which unprivileged processes must.
 *
 * Threads started after a watch is made get its event at the next
 * refresh that comes THREAD_SCAN_NS after the last look (a thread's
 * writes before that are not seen). Each watch takes one debug register
 * in every thread; at most GL_WATCH_MAX watches at once.
 */
#define _GNU_SOURCE
#include "glinspect.h"
#include "inspect_internal.h"

#define UNW_LOCAL_ONLY
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <link.h>
#include <linux/hw_breakpoint.h>
#include <linux/perf_event.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum {
    THREADS = 512,
    EVENTS = GL_WATCH_MAX * THREADS, /* watches x threads */
    CODE_RANGES = 8,
    OWN_WRITES_LIMIT = 1000000,
    /* libunwind's walk, under AddressSanitizer too, with room to spare */
    ALTERNATE_STACK_BYTES = 256 * 1024
};
/* How often a thread looks again for threads started since (for their
 * events) and at its alternate signal stack. */
#define THREAD_SCAN_NS 100000000u

/* One watched address. Written under `lock` by the thread that makes or
 * refreshes it; read by the signal handler, which takes no lock: the
 * fields it reads are set before `active` is, and stay until the watch is
 * taken down (its events closed first). */
typedef struct watch {
    _Atomic int active;
    _Atomic int armed;           /* events enabled: the bytes are saved */
    uintptr_t address;
    size_t length;               /* HW_BREAKPOINT_LEN_* */
    const gl_greenlet *greenlet; /* kept alive by the caller */
    uint64_t greenlet_id;
    int64_t owner_thread;
    uintptr_t code_low[CODE_RANGES], code_high[CODE_RANGES]; /* holder's */
    int code_ranges;
    char holder[256];            /* the holder's object, "" if unknown */
    _Atomic uint64_t own_writes; /* stores by the owner's thread, counted */
    _Atomic int own_given_up;
} watch;

/* One perf event: a watch in one thread. */
typedef struct event {
    _Atomic int fd_plus_one; /* 0: a free entry (static memory is zero) */
    int watch;
    int64_t thread;
} event;

static watch watches[GL_WATCH_MAX];
static event events[EVENTS];
static gl_watch_write writes[GL_WATCH_WRITES];
static _Atomic size_t writes_taken;  /* slots handed out, may exceed */
static _Atomic uint64_t writes_dropped;
static _Atomic int any_watch;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* The handler there was before ours: its function and flags only (the
 * rest of a struct sigaction may hold stack garbage: AddressSanitizer's
 * interceptor of sigaction leaves some there, which the audit finds). */
static void (*previous_handler)(int);
static void (*previous_sigaction)(int, siginfo_t *, void *);
static int handler_installed;
/* The same for SIGTRAP (see on_stray_trap). */
static void (*previous_trap_handler)(int);
static void (*previous_trap_sigaction)(int, siginfo_t *, void *);
static int previous_trap_ignored;
static char unavailable[256];
/* The alternate signal stack of each thread that refreshed the watches,
 * its own (faulthandler's, AddressSanitizer's) or one made here (owned),
 * under `lock`: the handler's frames leave stack addresses there, so the
 * audit leaves these out. A thread's entry goes when it ends. */
typedef struct alternate_stack {
    int64_t thread; /* 0: a free entry */
    void *base;
    size_t size;
    int owned;
} alternate_stack;
static alternate_stack alternate_stacks[THREADS];
static pthread_key_t alternate_stack_key;
static pthread_once_t alternate_stack_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------ handler */

static int in_holder_code(const watch *w, uintptr_t ip)
{
    for (int i = 0; i < w->code_ranges; i++)
        if (ip >= w->code_low[i] && ip < w->code_high[i])
            return 1;
    return 0;
}

/* Whether a store of the greenlet's own thread went through the holder's
 * code into memory that is not the holder's own frame: the frame whose
 * locals hold the address (frames' stack pointers rise from the store) is
 * not in the holder's code -- or there is none, the address being below
 * the stack in use. Greenlets that started at one depth and run the same
 * extension write their own locals at the address; those are not stale. */
static int by_holder(const watch *w, const gl_watch_write *record)
{
    int through = 0;
    for (size_t i = 0; i < record->frame_count && !through; i++)
        through = in_holder_code(w, record->ips[i]);
    if (!through || record->frame_count == 0 ||
        record->address < record->sps[0])
        return through;
    for (size_t k = 0; k + 1 < record->frame_count; k++)
        if (record->address < record->sps[k + 1])
            return !in_holder_code(w, record->ips[k]);
    return 1; /* above the frames walked */
}

/* The writer's backtrace, from the signal's context: the first frame is
 * the instruction after the store. */
static size_t unwind_writer(void *context, gl_watch_write *record)
{
    unw_cursor_t cursor;
    size_t count = 0;
    if (unw_init_local2(&cursor, (unw_context_t *)context,
                        UNW_INIT_SIGNAL_FRAME) < 0)
        return 0;
    do {
        unw_word_t ip, sp;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0 ||
            unw_get_reg(&cursor, UNW_REG_SP, &sp) < 0)
            break;
        record->ips[count] = (uintptr_t)ip;
        record->sps[count] = (uintptr_t)sp;
        count++;
    } while (count < GL_WATCH_FRAMES && unw_step(&cursor) > 0);
    return count;
}

static void on_trap(int signal, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    event *e = NULL;
    for (size_t i = 0; i < EVENTS && !e; i++)
        if (atomic_load(&events[i].fd_plus_one) == info->si_fd + 1 &&
            info->si_fd >= 0)
            e = &events[i];
    if (!e) { /* not ours: whoever had the signal before */
        if (previous_sigaction)
            previous_sigaction(signal, info, context);
        else if (previous_handler)
            previous_handler(signal);
        errno = saved_errno;
        return;
    }
    watch *w = &watches[e->watch];
    gl_watch_write record = {.address = w->address,
                             .greenlet_id = w->greenlet_id,
                             .owner_thread = w->owner_thread,
                             .writer_thread = (int64_t)syscall(SYS_gettid),
                             .saved = atomic_load(&w->armed)};
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    record.time_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    record.frame_count = unwind_writer(context, &record);
    if (record.writer_thread != record.owner_thread)
        record.kind = GL_WATCH_FROM_ANOTHER_THREAD;
    else if (by_holder(w, &record))
        record.kind = GL_WATCH_BY_HOLDER;
    if (!record.kind) { /* the running greenlet's own frames, likely */
        if (atomic_fetch_add(&w->own_writes, 1) + 1 >= OWN_WRITES_LIMIT &&
            !atomic_exchange(&w->own_given_up, 1))
            ioctl(info->si_fd, PERF_EVENT_IOC_DISABLE, 0);
        errno = saved_errno;
        return;
    }
    size_t slot = atomic_fetch_add(&writes_taken, 1);
    if (slot < GL_WATCH_WRITES) {
        writes[slot] = record;
        __atomic_store_n(&writes[slot].complete, 1, __ATOMIC_RELEASE);
    } else {
        atomic_fetch_add(&writes_dropped, 1);
    }
    errno = saved_errno;
}

/* ------------------------------------------------------------- events */

static int open_event(uintptr_t address, size_t length, long thread)
{
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.type = PERF_TYPE_BREAKPOINT;
    attr.size = sizeof attr;
    attr.bp_type = HW_BREAKPOINT_W;
    attr.bp_addr = address;
    attr.bp_len = length;
    attr.sample_period = 1;
    attr.wakeup_events = 1;
    attr.disabled = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    int fd = (int)syscall(SYS_perf_event_open, &attr, (pid_t)thread, -1, -1,
                          PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct f_owner_ex owner = {F_OWNER_TID, (pid_t)thread};
    if (fcntl(fd, F_SETFL, O_ASYNC | O_NONBLOCK) < 0 ||
        fcntl(fd, F_SETSIG, GL_WATCH_SIGNAL) < 0 ||
        fcntl(fd, F_SETOWN_EX, &owner) < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

static void set_armed(int index, int armed)
{
    if (atomic_exchange(&watches[index].armed, armed) == armed)
        return;
    if (armed) { /* a new stretch swapped out: trap the owner's thread again */
        atomic_store(&watches[index].own_writes, 0);
        atomic_store(&watches[index].own_given_up, 0);
    }
    for (size_t i = 0; i < EVENTS; i++) {
        int fd = atomic_load(&events[i].fd_plus_one) - 1;
        if (fd >= 0 && events[i].watch == index &&
            !(events[i].thread == watches[index].owner_thread &&
              atomic_load(&watches[index].own_given_up)))
            ioctl(fd, armed ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE,
                  0);
    }
}

static void close_events(int index)
{
    for (size_t i = 0; i < EVENTS; i++)
        if (atomic_load(&events[i].fd_plus_one) && events[i].watch == index)
            close(atomic_exchange(&events[i].fd_plus_one, 0) - 1);
}

static int has_event(int index, long thread)
{
    for (size_t i = 0; i < EVENTS; i++)
        if (atomic_load(&events[i].fd_plus_one) && events[i].watch == index &&
            events[i].thread == thread)
            return 1;
    return 0;
}

/* Opens the watch's event in every thread of the process that has none
 * yet. 0, or a negative errno of the first thread that failed (with
 * `all_or_none`, the others are closed then). */
static int open_events(int index, size_t length, int all_or_none)
{
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks)
        return -errno;
    int failure = 0;
    size_t next = 0;
    for (struct dirent *task; !failure && (task = readdir(tasks));) {
        long thread = strtol(task->d_name, NULL, 10);
        if (thread <= 0 || has_event(index, thread))
            continue;
        while (next < EVENTS && atomic_load(&events[next].fd_plus_one))
            next++;
        if (next == EVENTS) {
            failure = -ENOSPC;
            break;
        }
        int fd = open_event(watches[index].address, length, thread);
        if (fd == -ESRCH)
            continue; /* the thread has exited meanwhile */
        if (fd < 0) {
            failure = fd;
            break;
        }
        events[next].watch = index;
        events[next].thread = thread;
        atomic_store(&events[next].fd_plus_one, fd + 1);
        if (atomic_load(&watches[index].armed))
            ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
    }
    closedir(tasks);
    if (failure && all_or_none)
        close_events(index);
    return failure;
}

/* --------------------------------------------------------------- setup */

/* In a child after fork: the events are the parent's (the descriptors
 * came along; enabling or disabling them would move the parent's
 * watchpoints). Forget them, closing the child's copies. */
static void forget_after_fork(void)
{
    for (int i = 0; i < GL_WATCH_MAX; i++)
        atomic_store(&watches[i].active, 0);
    for (size_t i = 0; i < EVENTS; i++) {
        int fd = atomic_exchange(&events[i].fd_plus_one, 0) - 1;
        if (fd >= 0)
            close(fd);
    }
    atomic_store(&any_watch, 0);
    pthread_mutex_init(&lock, NULL);
}

/* A debug trap that no watch's event claims. In a process that uses
 * hardware breakpoints, now and then a debug exception arrives that the
 * kernel does not pin on a perf event (seen about once in thirty runs of
 * the watch tests under AddressSanitizer, in a virtual machine); it sends
 * SIGTRAP for it, with si_code TRAP_HWBKPT, or TRAP_BRKPT for a debug
 * exception with no cause recorded, and SIGTRAP's default action ends the
 * process. Those traps are dropped: the store that caused one, if any,
 * has been made, and execution goes on after it. On x86-64 only, where
 * TRAP_BRKPT cannot come from a breakpoint instruction (int3 gives
 * SI_KERNEL), and where the trap is taken after the instruction. Any other
 * SIGTRAP goes where it went before us. */
static void on_stray_trap(int signal, siginfo_t *info, void *context)
{
#if defined(__x86_64__)
    if (info->si_code == TRAP_HWBKPT || info->si_code == TRAP_BRKPT)
        return;
#endif
    if (previous_trap_sigaction) {
        previous_trap_sigaction(signal, info, context);
    } else if (previous_trap_handler) {
        previous_trap_handler(signal);
    } else if (!previous_trap_ignored) { /* the default action, as before */
        struct sigaction fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.sa_handler = SIG_DFL;
        sigemptyset(&fallback.sa_mask);
        sigaction(SIGTRAP, &fallback, NULL);
        raise(SIGTRAP); /* delivered once this handler returns */
    }
}

/* Installs `function` for `signal`, keeping the handler there was. */
static int take_signal(int signal, void (*function)(int, siginfo_t *, void *),
                       void (**previous_function)(int),
                       void (**previous_action)(int, siginfo_t *, void *),
                       int *previous_ignored)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = function;
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    struct sigaction previous;
    memset(&previous, 0, sizeof previous);
    if (sigaction(signal, &action, &previous) != 0)
        return -errno;
    if (previous.sa_flags & SA_SIGINFO)
        *previous_action = previous.sa_sigaction;
    else if (previous.sa_handler == SIG_IGN)
        *previous_ignored = 1;
    else if (previous.sa_handler != SIG_DFL)
        *previous_function = previous.sa_handler;
    explicit_bzero(&previous, sizeof previous);
    return 0;
}

static int install_handler(void)
{
    if (handler_installed)
        return 0;
    pthread_atfork(NULL, NULL, forget_after_fork);
    /* No cache for the handler's walks: a global one takes a lock, and a
     * per-thread one lives in libunwind's thread-local storage, which a
     * thread's first touch may allocate -- inside malloc, perhaps, where
     * the trapped store was. */
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_NONE);
    int ignored = 0; /* an ignored GL_WATCH_SIGNAL stays unforwarded */
    int error = take_signal(GL_WATCH_SIGNAL, on_trap, &previous_handler,
                            &previous_sigaction, &ignored);
    if (error)
        return error;
    error = take_signal(SIGTRAP, on_stray_trap, &previous_trap_handler,
                        &previous_trap_sigaction, &previous_trap_ignored);
    if (error)
        return error;
    handler_installed = 1;
    return 0;
}

struct code_search {
    const char *object;
    watch *w;
};

/* The executable segments of the object named `object`. */
static int find_code(struct dl_phdr_info *info, size_t size, void *context)
{
    (void)size;
    struct code_search *search = context;
    char program[256];
    const char *name =
        gl__object_path(info->dlpi_name, program, sizeof program);
    if (strcmp(name, search->object) != 0)
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        watch *w = search->w;
        if (segment->p_type == PT_LOAD && (segment->p_flags & PF_X) &&
            w->code_ranges < CODE_RANGES) {
            w->code_low[w->code_ranges] = info->dlpi_addr + segment->p_vaddr;
            w->code_high[w->code_ranges] =
                w->code_low[w->code_ranges] + segment->p_memsz;
            w->code_ranges++;
        }
    }
    return 1;
}

static void note_unavailable(const char *what, int error)
{
    snprintf(unavailable, sizeof unavailable,
             "hardware watchpoints are not available here: %s: %s%s", what,
             strerror(error),
             error == EACCES || error == EPERM
                 ? " (see /proc/sys/kernel/perf_event_paranoid, or run with "
                   "CAP_PERFMON)"
                 : error == ENOENT || error == ENOSYS || error == EOPNOTSUPP
                       ? " (no perf events, or no breakpoint support: a "
                         "virtual machine or container may hide them)"
                       : "");
}

/* ------------------------------------------------- alternate stacks */

/* Under `lock`: the calling thread's entry, or a free one (NULL: full). */
static alternate_stack *alternate_stack_entry(int64_t thread)
{
    alternate_stack *free_entry = NULL;
    for (int i = 0; i < THREADS; i++) {
        if (alternate_stacks[i].thread == thread)
            return &alternate_stacks[i];
        if (!alternate_stacks[i].thread && !free_entry)
            free_entry = &alternate_stacks[i];
    }
    return free_entry;
}

/* The thread ends: its entry goes, and the stack if it was made here. */
static void forget_alternate_stack(void *unused)
{
    (void)unused;
    int64_t thread = (int64_t)syscall(SYS_gettid);
    void *owned = NULL;
    pthread_mutex_lock(&lock);
    alternate_stack *entry = alternate_stack_entry(thread);
    if (entry && entry->thread == thread) {
        if (entry->owned)
            owned = entry->base;
        *entry = (alternate_stack){0};
    }
    pthread_mutex_unlock(&lock);
    if (owned) {
        stack_t none = {.ss_flags = SS_DISABLE};
        sigaltstack(&none, NULL);
        munmap(owned, ALTERNATE_STACK_BYTES);
    }
}

static void create_alternate_stack_key(void)
{
    if (pthread_key_create(&alternate_stack_key, forget_alternate_stack) != 0)
        alternate_stack_key = (pthread_key_t)-1;
}

/* Notes the calling thread's alternate signal stack, making one if it has
 * none; again every THREAD_SCAN_NS, since faulthandler, say, may install
 * its own meanwhile. Not under `lock`. Without one (no memory, no room)
 * the handler runs on the thread's stack, as signal handlers do. */
static void ensure_alternate_stack(uint64_t now_ns)
{
    static __thread uint64_t last_look_ns;
    if (last_look_ns && now_ns - last_look_ns < THREAD_SCAN_NS)
        return;
    last_look_ns = now_ns;
    pthread_once(&alternate_stack_once, create_alternate_stack_key);
    if (alternate_stack_key == (pthread_key_t)-1)
        return;
    stack_t current;
    if (sigaltstack(NULL, &current) != 0)
        return;
    alternate_stack noted = {.thread = (int64_t)syscall(SYS_gettid),
                             .base = current.ss_sp, .size = current.ss_size};
    if (current.ss_flags & SS_DISABLE) {
        void *made = mmap(NULL, ALTERNATE_STACK_BYTES, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        stack_t ours = {.ss_sp = made, .ss_size = ALTERNATE_STACK_BYTES};
        if (made == MAP_FAILED)
            return;
        if (sigaltstack(&ours, NULL) != 0) {
            munmap(made, ALTERNATE_STACK_BYTES);
            return;
        }
        noted = (alternate_stack){noted.thread, made, ALTERNATE_STACK_BYTES, 1};
    }
    pthread_mutex_lock(&lock);
    alternate_stack *entry = alternate_stack_entry(noted.thread);
    if (entry && entry->owned && entry->base == noted.base)
        noted.owned = 1; /* the one made here, seen again */
    if (entry)
        *entry = noted;
    pthread_mutex_unlock(&lock);
    pthread_setspecific(alternate_stack_key, &alternate_stacks[0]);
}

int gl_watch_add(uintptr_t address, const gl_greenlet *greenlet,
                 const char *holder_object)
{
    if (!greenlet || !address)
        return GL_EINVAL;
    /* The widest aligned length that covers the address, up to a word. */
    size_t length = address % 8 == 0   ? HW_BREAKPOINT_LEN_8
                    : address % 4 == 0 ? HW_BREAKPOINT_LEN_4
                    : address % 2 == 0 ? HW_BREAKPOINT_LEN_2
                                       : HW_BREAKPOINT_LEN_1;
    gl_greenlet_info info;
    gl_greenlet_get_info(greenlet, &info);
    if (info.state == GL_STATE_DEAD)
        return GL_EDEAD;
    pthread_mutex_lock(&lock);
    int index = -1, error = 0;
    for (int i = 0; i < GL_WATCH_MAX; i++) {
        if (atomic_load(&watches[i].active) &&
            watches[i].address == address && watches[i].greenlet == greenlet)
            error = 1; /* watched already */
        if (index < 0 && !atomic_load(&watches[i].active))
            index = i;
    }
    if (error) {
        pthread_mutex_unlock(&lock);
        return 0;
    }
    if (index < 0) {
        pthread_mutex_unlock(&lock);
        return GL_ENOSPC;
    }
    int installed = install_handler();
    watch *w = &watches[index];
    *w = (watch){.address = address,
                 .length = length,
                 .greenlet = greenlet,
                 .greenlet_id = info.id,
                 .owner_thread = info.thread_os_id};
    atomic_store(&w->armed, 0);
    snprintf(w->holder, sizeof w->holder, "%s",
             holder_object ? holder_object : "");
    if (w->holder[0]) {
        struct code_search search = {w->holder, w};
        dl_iterate_phdr(find_code, &search);
    }
    w->length = length;
    int opened = installed ? installed : open_events(index, length, 1);
    if (opened < 0) {
        note_unavailable(installed ? "sigaction" : "perf_event_open",
                         -opened);
        error = opened == -ENOSPC ? GL_ENOSPC : GL_EUNAVAILABLE;
    } else {
        atomic_store(&w->active, 1);
        atomic_store(&any_watch, 1);
    }
    pthread_mutex_unlock(&lock);
    if (!error)
        gl_watch_refresh();
    return error;
}

void gl_watch_remove(uintptr_t address, const gl_greenlet *greenlet)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < GL_WATCH_MAX; i++)
        if (atomic_load(&watches[i].active) && watches[i].address == address &&
            watches[i].greenlet == greenlet &&
            atomic_exchange(&watches[i].active, 0))
            close_events(i);
    int any = 0;
    for (int i = 0; i < GL_WATCH_MAX; i++)
        any |= atomic_load(&watches[i].active);
    atomic_store(&any_watch, any);
    pthread_mutex_unlock(&lock);
}

void gl_watch_clear(void)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < GL_WATCH_MAX; i++)
        if (atomic_exchange(&watches[i].active, 0))
            close_events(i);
    atomic_store(&any_watch, 0);
    pthread_mutex_unlock(&lock);
}

int gl_watch_active(void)
{
    return atomic_load_explicit(&any_watch, memory_order_relaxed);
}

/* Threads started since a watch was made get its events, at most every
 * THREAD_SCAN_NS, from gl_watch_refresh (the switch path of the thread
 * whose greenlet is watched, or any). */

void gl_watch_refresh(void)
{
    if (!gl_watch_active())
        return;
    static uint64_t last_thread_scan;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    uint64_t now_ns =
        (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    ensure_alternate_stack(now_ns); /* before the watch arms, in its thread */
    pthread_mutex_lock(&lock);
    if (now_ns - last_thread_scan >= THREAD_SCAN_NS) {
        last_thread_scan = now_ns;
        for (int i = 0; i < GL_WATCH_MAX; i++)
            if (atomic_load(&watches[i].active))
                open_events(i, watches[i].length, 0);
    }
    for (int i = 0; i < GL_WATCH_MAX; i++) {
        watch *w = &watches[i];
        if (!atomic_load(&w->active))
            continue;
        gl_greenlet_info info;
        gl_greenlet_get_info(w->greenlet, &info);
        if (info.state == GL_STATE_DEAD) { /* its stack is gone */
            atomic_store(&w->active, 0);
            close_events(i);
            continue;
        }
        set_armed(i, info.state == GL_STATE_SUSPENDED &&
                         w->address >= info.stack_pointer &&
                         w->address < info.stack_pointer + info.saved_bytes);
    }
    pthread_mutex_unlock(&lock);
}

size_t gl_watch_list(gl_watch_info *out, size_t capacity)
{
    size_t count = 0;
    pthread_mutex_lock(&lock);
    for (int i = 0; i < GL_WATCH_MAX && count < capacity; i++)
        if (atomic_load(&watches[i].active))
            out[count++] = (gl_watch_info){
                watches[i].address, watches[i].greenlet_id,
                watches[i].owner_thread, atomic_load(&watches[i].armed),
                atomic_load(&watches[i].own_writes),
                atomic_load(&watches[i].own_given_up)};
    pthread_mutex_unlock(&lock);
    return count;
}

size_t gl_watch_writes(gl_watch_write *out, size_t capacity,
                       uint64_t *dropped)
{
    size_t taken = atomic_load(&writes_taken), count = 0;
    if (taken > GL_WATCH_WRITES)
        taken = GL_WATCH_WRITES;
    for (size_t i = 0; i < taken && count < capacity; i++)
        if (__atomic_load_n(&writes[i].complete, __ATOMIC_ACQUIRE))
            out[count++] = writes[i];
    if (dropped)
        *dropped = atomic_load(&writes_dropped);
    return count;
}

void gl__watch_blocks(gl_block_visitor *visit, void *context)
{
    visit(watches, sizeof watches, context);
    visit(writes, sizeof writes, context);
    for (int i = 0; i < THREADS; i++)
        if (alternate_stacks[i].thread && alternate_stacks[i].base)
            visit(alternate_stacks[i].base, alternate_stacks[i].size, context);
}

const char *gl_watch_unavailable(void)
{
    return unavailable;
}
