/*
 * hazard_scan.c -- the hazard audit's scan (glinspect.h): words outside
 * the engine that point into the saved part of a suspended greenlet's
 * stack.
 *
 * A suspended greenlet's stack is [stack_pointer, stack_stop); its lowest
 * saved_bytes were copied to the heap because another greenlet of its
 * thread needed those addresses. A pointer into that range, kept anywhere
 * else, now points at the other greenlet's data (or at nothing in use): a
 * read sees the wrong bytes, a write corrupts the running greenlet or is
 * lost when the suspended one is copied back. That is the hazard of stack
 * copying that C extensions meet when they keep a pointer to a stack
 * buffer across a switch. The same address may hold, in place, the live
 * bytes of yet another suspended greenlet (the one that took it): the
 * word may mean those, which are fine now and are saved away as soon as
 * the first one resumes. That greenlet is a candidate too, marked live.
 *
 * What is scanned:
 * - the writable segments (PT_LOAD with PF_W: .data, .bss, .got and the
 *   like) of every loaded object, word by word. A holder is attributed to
 *   its object and the symbol covering it, if any (dynamic, or static
 *   from the file's .symtab: elf_symbols.c). libunwind's are left out:
 *   its caches hold the frames that the audit and the watches walked;
 * - the stacks of the process's other threads, from each one's stack
 *   pointer up to the frame of glibc's start_thread (found by unwinding;
 *   the end of the stack's mapping if not found): the live frames of the
 *   thread's code only, so that old values below the stack pointer are not
 *   hits; nor are slots where its functions saved registers it inherited
 *   from the thread that created it (gl__thread_setup).
 *   The stack pointer and instruction address of a thread waiting in a
 *   system call are in /proc/self/task/TID/syscall ("NR ARG1..ARG6 SP
 *   PC"); a thread that is
 *   running on a CPU (rare: every Python thread but the scanning one
 *   waits for the GIL) cannot be scanned. Words pointing into the stacks
 *   of the thread's own greenlets are not hits there: its running
 *   greenlet's frames use those addresses now;
 * - malloc's heaps, allocation by allocation (free chunks are stale data,
 *   not holders; heap_walk.c), or under AddressSanitizer its heap, the
 *   words it says are in live allocations. Other anonymous memory is not
 *   scanned (CPython's object arenas among it). Left out: the stacks of threads (found by their
 *   stack pointers, and by the engine's records of their tops), the
 *   engine's records and heap copies (gl_engine_blocks: they hold stack
 *   addresses by design), the watches' records (hazard_watch.c) and this scan's own arrays.
 * The scanning thread's own stack is not scanned, nor the engine's
 * monitor thread's (its frames hold copies of records). Words the runtime
 * keeps and handles correctly (CPython's thread states point at the
 * running greenlet's C frame record, say) are left out through the
 * `known` callback.
 *
 * The caller must keep greenlets from switching during the scan (the
 * CPython binding holds the GIL), as for gl_read_stack; the registry lock
 * is held while the regions are collected, not while memory is scanned.
 */
#define _GNU_SOURCE
#include "glinspect.h"
#include "heap_walk.h"
#include "inspect_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <inttypes.h>
#include <link.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A part of a suspended greenlet's stack: saved (on the heap) or live. */
typedef struct stack_part {
    uintptr_t low, high;
    uint64_t greenlet_id;
    int64_t thread_os_id;
    int saved;
    uintptr_t reach; /* see index_parts */
} stack_part;

_Static_assert(offsetof(stack_part, low) == 0, "binary search over low");

/* A range of addresses, for the memory that is not scanned. */
typedef struct range {
    uintptr_t low, high;
} range;

_Static_assert(offsetof(range, low) == 0, "binary search over low");

typedef struct range_list {
    range *items;
    size_t count, capacity;
} range_list;

/* The stack that the running greenlet of another thread is using now:
 * from its thread's stack pointer when it waits in a system call, else
 * (running on a CPU, in C code that let the GIL go) from the lowest
 * address of its thread's stack; up to where the greenlet started. */
typedef struct running_stack {
    int64_t thread;
    uintptr_t low, stop;
    int waiting; /* low is its thread's stack pointer */
} running_stack;

/* A line of /proc/self/maps. */
typedef struct mapping {
    uintptr_t low, high;
    int anonymous, is_brk_heap, is_stack;
} mapping;

typedef struct scan {
    stack_part *parts;
    size_t part_count, part_capacity;
    uintptr_t parts_low, parts_high; /* every part lies within */
    range_list engine_blocks;        /* sorted */
    range_list thread_tops;          /* tops of the threads' stacks */
    running_stack running[64];       /* other threads' running greenlets */
    size_t running_count;
    int64_t self;                    /* the scanning thread */
    mapping *mappings;
    size_t mapping_count, mapping_capacity;
    gl_hazard_known *known;
    void *context;
    gl_hazard_hit *hits;
    size_t hit_count, hit_capacity;
    gl__memory_window window;
    gl__thread_setup_words setup; /* of the thread being scanned */
    int error;
} scan;

/* Frees an array of the scan's, zeroed first: it holds stack addresses,
 * which a later scan would find in memory reused by an allocation that
 * does not overwrite all of it. */
static void scrub_and_free(void *items, size_t bytes)
{
    if (items)
        explicit_bzero(items, bytes);
    free(items);
}

/* Grows a dynamic array by doubling (not with realloc, which would leave
 * the old copy unscrubbed); GL_ENOMEM in *error on failure. */
static int grow(void **items, size_t *capacity, size_t count, size_t size,
                int *error)
{
    if (count < *capacity)
        return 1;
    size_t bigger = *capacity ? 2 * *capacity : 64;
    void *moved = malloc(bigger * size);
    if (!moved) {
        *error = GL_ENOMEM;
        return 0;
    }
    if (*items)
        memcpy(moved, *items, count * size);
    scrub_and_free(*items, *capacity * size);
    *items = moved;
    *capacity = bigger;
    return 1;
}

void gl_hazard_hits_free(gl_hazard_hit *hits, size_t count)
{
    scrub_and_free(hits, count * sizeof *hits);
}

static void add_range(range_list *list, uintptr_t low, uintptr_t high,
                      int *error)
{
    if (grow((void **)&list->items, &list->capacity, list->count,
             sizeof *list->items, error))
        list->items[list->count++] = (range){low, high};
}

static int by_range_low(const void *a, const void *b)
{
    uintptr_t x = ((const range *)a)->low, y = ((const range *)b)->low;
    return x < y ? -1 : x > y;
}

/* How many of `count` items sorted by `low` start at or below `address`:
 * a binary search over an array of `size`-byte items that each begin with
 * a uintptr_t low (range, stack_part). */
static size_t starting_at_or_below(const void *items, size_t count,
                                   size_t size, uintptr_t address)
{
    size_t low = 0, high = count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        uintptr_t start;
        memcpy(&start, (const char *)items + middle * size, sizeof start);
        if (start <= address)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* Whether `address` lies in one of the sorted, disjoint ranges. */
static int in_ranges(const range_list *list, uintptr_t address)
{
    size_t below = starting_at_or_below(list->items, list->count,
                                        sizeof *list->items, address);
    return below > 0 && address < list->items[below - 1].high;
}

/* ------------------------------------------------------------- parts */

static void add_part(scan *s, const gl_greenlet_info *g, uintptr_t low,
                     uintptr_t high, int saved)
{
    if (low >= high || !grow((void **)&s->parts, &s->part_capacity,
                             s->part_count, sizeof *s->parts, &s->error))
        return;
    s->parts[s->part_count++] =
        (stack_part){low, high, g->id, g->thread_os_id, saved, 0};
}

static int collect_parts(const gl_greenlet_info *g, void *context)
{
    scan *s = context;
    if (g->state == GL_STATE_RUNNING && g->thread_os_id != s->self &&
        g->stack_stop && s->running_count < 64)
        s->running[s->running_count++] =
            (running_stack){g->thread_os_id, g->thread_stack_low, g->stack_stop};
    if (g->is_main && g->stack_stop)
        add_range(&s->thread_tops, g->stack_stop - 1, g->stack_stop,
                  &s->error);
    if (g->state != GL_STATE_SUSPENDED || g->stack_pointer == 0)
        return s->error != 0;
    uintptr_t saved_end = g->stack_pointer + g->saved_bytes;
    add_part(s, g, g->stack_pointer, saved_end, 1);
    if (g->stack_stop > saved_end)
        add_part(s, g, saved_end, g->stack_stop, 0);
    return s->error != 0;
}

static void remember_block(const void *address, size_t size, void *context)
{
    scan *s = context;
    add_range(&s->engine_blocks, (uintptr_t)address,
              (uintptr_t)address + size, &s->error);
}

static int walk_registry(void *context)
{
    scan *s = context;
    gl_registry_walk(NULL, collect_parts, s);
    gl_engine_blocks(remember_block, s);
    gl__watch_blocks(remember_block, s);
    return 0;
}

static int by_low(const void *a, const void *b)
{
    uintptr_t x = ((const stack_part *)a)->low;
    uintptr_t y = ((const stack_part *)b)->low;
    return x < y ? -1 : x > y;
}

/* Parts overlap: greenlets of one thread that started at the same depth
 * (a hub's handlers) use the same addresses, and each of them that is
 * suspended may hold its own saved bytes for them. So an address may be
 * in many parts; after sorting by `low`, `reach[i]` is the highest `high`
 * among parts 0..i, which bounds the walk back from the last part
 * starting at or below an address. */
static void index_parts(scan *s)
{
    qsort(s->parts, s->part_count, sizeof *s->parts, by_low);
    uintptr_t reach = 0;
    s->parts_low = s->part_count ? s->parts[0].low : 0;
    for (size_t i = 0; i < s->part_count; i++) {
        if (s->parts[i].high > reach)
            reach = s->parts[i].high;
        s->parts[i].reach = reach;
    }
    s->parts_high = reach;
    qsort(s->engine_blocks.items, s->engine_blocks.count,
          sizeof *s->engine_blocks.items, by_range_low);
}

/* The number of parts starting at or below `address`: the parts that
 * may hold it are among the first that many. */
static size_t parts_up_to(const scan *s, uintptr_t address)
{
    return starting_at_or_below(s->parts, s->part_count, sizeof *s->parts,
                                address);
}

/* --------------------------------------------------------------- hits */

/* Names the holder: its object, and the symbol that covers it -- a
 * dynamic one, or else a static one from the object's file (.symtab:
 * an extension's `static` globals, unless the file is stripped). */
static void attribute(gl_hazard_hit *hit, const char *object,
                      uintptr_t bias)
{
    snprintf(hit->object, sizeof hit->object, "%s", object);
    Dl_info info;
    const ElfW(Sym) *symbol = NULL;
    if (dladdr1((void *)hit->holder, &info, (void **)&symbol,
                RTLD_DL_SYMENT) &&
        info.dli_sname && info.dli_saddr && symbol &&
        hit->holder < (uintptr_t)info.dli_saddr + symbol->st_size) {
        snprintf(hit->symbol, sizeof hit->symbol, "%s", info.dli_sname);
        hit->symbol_offset = hit->holder - (uintptr_t)info.dli_saddr;
    } else if (!gl__elf_data_symbol(object, bias, hit->holder, hit->symbol,
                                    sizeof hit->symbol,
                                    &hit->symbol_offset)) {
        hit->symbol[0] = '\0';
        hit->symbol_offset = 0;
    }
}

/* Where the words being scanned are. */
typedef struct holder_place {
    int kind;            /* enum gl_hazard_place */
    const char *object;  /* GL_HAZARD_IN_OBJECT: its path, */
    uintptr_t bias;      /* and its load bias */
    int64_t thread;      /* GL_HAZARD_IN_THREAD_STACK: its tid */
    uintptr_t allocation; /* GL_HAZARD_IN_HEAP: as the walk found it */
    size_t allocation_size;
} holder_place;

static void add_hit(scan *s, uintptr_t holder, uintptr_t target,
                    const stack_part *part, const holder_place *place)
{
    if (!grow((void **)&s->hits, &s->hit_capacity, s->hit_count,
              sizeof *s->hits, &s->error))
        return;
    gl_hazard_hit *hit = &s->hits[s->hit_count++];
    *hit = (gl_hazard_hit){.holder = holder,
                           .target = target,
                           .greenlet_id = part->greenlet_id,
                           .thread_os_id = part->thread_os_id,
                           .region_low = part->low,
                           .region_high = part->high,
                           .saved = part->saved,
                           .holder_kind = place->kind,
                           .holder_thread_os_id = place->thread,
                           .allocation = place->allocation,
                           .allocation_size = place->allocation_size};
    if (place->kind == GL_HAZARD_IN_OBJECT)
        attribute(hit, place->object, place->bias);
}

static int within(uintptr_t address, const void *array, size_t bytes)
{
    return address >= (uintptr_t)array && address - (uintptr_t)array < bytes;
}

/* This scan's arrays hold stack addresses: the parts' bounds, the hits'
 * targets, the threads' tops. */
static int in_own_arrays(const scan *s, uintptr_t address)
{
    return within(address, s->hits, s->hit_capacity * sizeof *s->hits) ||
           within(address, s->parts, s->part_capacity * sizeof *s->parts) ||
           within(address, s->thread_tops.items,
                  s->thread_tops.capacity * sizeof(range)) ||
           within(address, s->engine_blocks.items,
                  s->engine_blocks.capacity * sizeof(range)) ||
           within(address, s->mappings,
                  s->mapping_capacity * sizeof *s->mappings);
}

/* Whether the word at `holder` is left out although it points into a
 * saved part: a word of the runtime's, of the engine's, of this scan's,
 * or a heap word in memory its allocator says is free. */
static int left_out(scan *s, uintptr_t holder, holder_place *place)
{
    if (s->known && s->known(holder, s->context))
        return 1;
    for (size_t i = 0; i < s->setup.count; i++)
        if (s->setup.slots[i] == holder)
            return 1; /* a register its thread inherited at its creation */
    if (in_ranges(&s->engine_blocks, holder))
        return 1;
    if (place->kind != GL_HAZARD_IN_HEAP)
        return 0;
    if (in_own_arrays(s, holder))
        return 1;
    if (!place->allocation) { /* memory the sanitizer's allocator has */
        uintptr_t start;
        size_t size;
        if (gl__sanitizer_allocation(holder, &start, &size) != 1)
            return 1; /* freed (stale data), or not its heap */
        place->allocation = start;
        place->allocation_size = size;
    }
    return 0;
}

/* Whether `word` may point into the live frames of the greenlet running
 * now in another thread. C code keeps pointers to the frames of the call
 * it is in, in its heap structures and locals -- zlib's state points at
 * the stream on its caller's stack while it compresses, the GIL let go --
 * and the address cannot tell whether the word means those frames or the
 * saved bytes of a greenlet that used the address before. Such words are
 * not judged, but those of loaded objects' data (globals, which outlive
 * calls: the classic holder) when the thread waits in a system call, its
 * frames holding still; a thread running on a CPU may be anywhere in its
 * stack. */
static int in_running_stack(const scan *s, uintptr_t word,
                            const holder_place *place)
{
    for (size_t i = 0; i < s->running_count; i++)
        if (word >= s->running[i].low && word < s->running[i].stop &&
            !(s->running[i].waiting && place->kind == GL_HAZARD_IN_OBJECT))
            return 1;
    return 0;
}

/* Checks one word: a hit for every saved part holding `word`, and then
 * for the live part holding it, if any. Pointers into the stacks of the
 * holder's own thread are not hits (its frames use those addresses). */
static void check_word(scan *s, uintptr_t holder, uintptr_t word,
                       holder_place *place)
{
    if (word < s->parts_low || word >= s->parts_high)
        return;
    /* The engine's heap copies are full of stack addresses: out early,
     * before the walk over the parts, which many greenlets started at one
     * depth make long. */
    if (in_ranges(&s->engine_blocks, holder))
        return;
    size_t last = parts_up_to(s, word), first = last;
    int saved = 0;
    while (first > 0 && s->parts[first - 1].reach > word) {
        const stack_part *part = &s->parts[--first];
        saved |= part->saved && part->high > word &&
                 part->thread_os_id != place->thread;
    }
    if (!saved || in_running_stack(s, word, place) ||
        left_out(s, holder, place))
        return;
    for (int want_saved = 1; want_saved >= 0; want_saved--)
        for (size_t i = first; i < last && !s->error; i++)
            if (s->parts[i].high > word && s->parts[i].saved == want_saved &&
                s->parts[i].thread_os_id != place->thread)
                add_hit(s, holder, word, &s->parts[i], place);
}

/* ------------------------------------------------------------ objects */

/* Reads every word of other objects' data, redzones between the globals
 * of instrumented objects included: AddressSanitizer must not check these
 * reads (they are deliberate, and within mapped segments). */
__attribute__((no_sanitize_address)) static void
scan_words(scan *s, uintptr_t start, uintptr_t end, holder_place *place)
{
    start = (start + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    for (uintptr_t at = start; at + sizeof(uintptr_t) <= end && !s->error;
         at += sizeof(uintptr_t))
        check_word(s, at, *(const volatile uintptr_t *)at, place);
}

/* libunwind's caches keep addresses of the frames it walked: the
 * audit's own walks, and the watches'. A tool, not a holder. */
static int is_unwinder(const char *object)
{
    const char *name = strrchr(object, '/');
    return strncmp(name ? name + 1 : object, "libunwind", 9) == 0;
}

const char *gl__object_path(const char *name, char *buffer, size_t size)
{
    if (name && *name)
        return name;
    ssize_t n = readlink("/proc/self/exe", buffer, size - 1);
    buffer[n > 0 ? n : 0] = '\0';
    return buffer;
}

static int scan_object(struct dl_phdr_info *info, size_t size, void *context)
{
    (void)size;
    scan *s = context;
    char program[256];
    const char *object =
        gl__object_path(info->dlpi_name, program, sizeof program);
    if (is_unwinder(object))
        return 0;
    for (int i = 0; i < info->dlpi_phnum && !s->error; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        if (segment->p_type != PT_LOAD || !(segment->p_flags & PF_W))
            continue;
        uintptr_t start = info->dlpi_addr + segment->p_vaddr;
        holder_place place = {GL_HAZARD_IN_OBJECT, object, info->dlpi_addr,
                              0, 0, 0};
        scan_words(s, start, start + segment->p_memsz, &place);
    }
    return s->error != 0;
}

/* ------------------------------------------------------------ mappings */

/* Guard pages below thread stacks are one page by default; larger ones
 * are asked for with pthread_attr_setguardsize. An arena's reserved tail
 * is inaccessible too, but megabytes long. */
#define GUARD_LIMIT ((uintptr_t)64 * 1024)

/* Reads /proc/self/maps: writable private mappings only. */
static void read_mappings(scan *s)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return;
    char line[512];
    uintptr_t guard_end = 0; /* of the last small inaccessible mapping */
    while (!s->error && fgets(line, sizeof line, maps)) {
        uintptr_t low, high;
        char permissions[8];
        int name_at = 0;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s %*s %*s %*s %n",
                   &low, &high, permissions, &name_at) < 3)
            continue; /* lines cut at the buffer's size do not parse */
        /* " %n" skips the spaces and newline after an anonymous one */
        const char *name = name_at ? line + name_at : "";
        int anonymous = *name == '\0' || strncmp(name, "[anon:", 6) == 0;
        int follows_guard = low == guard_end;
        guard_end = anonymous && strncmp(permissions, "---", 3) == 0 &&
                            high - low <= GUARD_LIMIT
                        ? high
                        : 0;
        if (permissions[1] != 'w' || permissions[3] != 'p' ||
            !grow((void **)&s->mappings, &s->mapping_capacity,
                  s->mapping_count,
                  sizeof *s->mappings, &s->error))
            continue;
        int brk_heap = strncmp(name, "[heap]", 6) == 0;
        s->mappings[s->mapping_count++] = (mapping){
            .low = low,
            .high = high,
            .anonymous = anonymous || brk_heap,
            .is_brk_heap = brk_heap,
            /* A thread's stack sits on its guard page: live threads',
             * and those glibc keeps for reuse after their threads
             * exited, full of stale frames. */
            .is_stack = anonymous && follows_guard};
    }
    fclose(maps);
}

static mapping *mapping_holding(scan *s, uintptr_t address)
{
    for (size_t i = 0; i < s->mapping_count; i++)
        if (s->mappings[i].low <= address && address < s->mappings[i].high)
            return &s->mappings[i];
    return NULL;
}

/* ------------------------------------------------------ thread stacks */

/* The stack pointer and instruction address of thread `tid` while it
 * waits in a system call; 0 (running, gone, unreadable) if not. */
static int waiting_registers(long tid, uintptr_t *sp, uintptr_t *ip)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    FILE *file = fopen(path, "re");
    if (!file)
        return 0;
    char *got = fgets(line, sizeof line, file);
    fclose(file);
    unsigned long long fields[9];
    if (!got ||
        sscanf(line, "%lld %llx %llx %llx %llx %llx %llx %llx %llx",
               (long long *)&fields[0], &fields[1], &fields[2], &fields[3],
               &fields[4], &fields[5], &fields[6], &fields[7],
               &fields[8]) != 9 ||
        (long long)fields[0] < 0)
        return 0;
    *sp = (uintptr_t)fields[7];
    *ip = (uintptr_t)fields[8];
    return *sp != 0;
}

/* Scans the live part of the other threads' stacks, and marks every
 * stack mapping it can find, so that the heap scan leaves them out. */
static void scan_thread_stacks(scan *s)
{
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    mapping *own = mapping_holding(s, here);
    if (own)
        own->is_stack = 1;
    for (size_t i = 0; i < s->thread_tops.count; i++) {
        mapping *top = mapping_holding(s, s->thread_tops.items[i].low);
        if (top)
            top->is_stack = 1;
    }
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks)
        return;
    long self = (long)syscall(SYS_gettid);
    long monitor = (long)gl_monitor_thread_os_id(); /* the engine's own */
    for (struct dirent *task; !s->error && (task = readdir(tasks));) {
        long tid = strtol(task->d_name, NULL, 10);
        if (tid <= 0 || tid == self)
            continue;
        uintptr_t sp = 0, ip = 0;
        mapping *stack =
            waiting_registers(tid, &sp, &ip) ? mapping_holding(s, sp) : NULL;
        if (!stack)
            continue;
        stack->is_stack = 1;
        holder_place place = {GL_HAZARD_IN_THREAD_STACK, NULL, 0, tid, 0, 0};
        if (tid == monitor)
            continue;
        gl__thread_setup(ip, sp, stack->high, &s->setup);
        scan_words(s, sp, s->setup.code_limit, &place);
        s->setup.count = 0;
    }
    closedir(tasks);
}

/* --------------------------------------------------------------- heap */

/* AddressSanitizer's shadow memory: huge, and never a holder. */
extern void __asan_get_shadow_mapping(uintptr_t *scale, uintptr_t *offset)
    __attribute__((weak));

static int is_sanitizer_shadow(const mapping *m)
{
    if (!__asan_get_shadow_mapping)
        return 0;
    uintptr_t scale = 0, offset = 0;
    __asan_get_shadow_mapping(&scale, &offset);
    uintptr_t shadow_high = offset + (UINTPTR_MAX >> 17 >> scale);
    return m->high > offset && m->low < shadow_high; /* overlaps */
}

/* The words of [start, end) through the window, a stretch of the
 * window's copy at a time. */
static void scan_heap_words(uintptr_t start, uintptr_t end,
                            uintptr_t allocation, size_t size, void *context)
{
    scan *s = context;
    holder_place place = {GL_HAZARD_IN_HEAP, NULL, 0, 0, allocation, size};
    uintptr_t at = (start + sizeof(uintptr_t) - 1) &
                   ~(uintptr_t)(sizeof(uintptr_t) - 1);
    while (at + sizeof(uintptr_t) <= end && !s->error) {
        uintptr_t word;
        if (gl__window_word(&s->window, at, &word) != 0) {
            /* unmapped meanwhile: on to the next page */
            at = (at | 4095) + 1;
            continue;
        }
        uintptr_t stop = s->window.end < end ? s->window.end : end;
        const unsigned char *bytes = s->window.bytes + (at - s->window.start);
        for (; at + sizeof(uintptr_t) <= stop && !s->error;
             at += sizeof(uintptr_t), bytes += sizeof(uintptr_t)) {
            memcpy(&word, bytes, sizeof word);
            if (word >= s->parts_low && word < s->parts_high) {
                place.allocation = allocation;
                place.allocation_size = size;
                check_word(s, at, word, &place);
            }
        }
    }
}

static void scan_heap(scan *s)
{
    /* Freed chunks parked in glibc's fast bins look in use; this folds
     * them (and gives unused pages back to the kernel). */
    malloc_trim(0);
    for (size_t i = 0; i < s->mapping_count && !s->error; i++) {
        const mapping *m = &s->mappings[i];
        if (m->anonymous && !m->is_stack && !is_sanitizer_shadow(m))
            gl__heap_walk(&s->window, m->low, m->high, m->is_brk_heap,
                          scan_heap_words, s);
    }
    gl__window_release(&s->window);
}

int gl_hazard_scan(gl_hazard_known *known, void *context,
                   gl_hazard_hit **hits, size_t *count)
{
    if (!hits || !count)
        return GL_EINVAL;
    *hits = NULL;
    *count = 0;
    scan s = {.known = known, .context = context,
              .self = (int64_t)syscall(SYS_gettid)};
    gl_registry_call(walk_registry, &s);
    for (size_t i = 0; i < s.running_count; i++) {
        uintptr_t sp, ip;
        if (waiting_registers((long)s.running[i].thread, &sp, &ip) &&
            sp < s.running[i].stop) {
            s.running[i].low = sp; /* below it: nothing of its in use */
            s.running[i].waiting = 1;
        }
    }
    if (!s.error && s.part_count) {
        index_parts(&s);
        read_mappings(&s);
        dl_iterate_phdr(scan_object, &s);
        if (!s.error)
            scan_thread_stacks(&s);
        if (!s.error)
            scan_heap(&s);
    }
    scrub_and_free(s.parts, s.part_capacity * sizeof *s.parts);
    scrub_and_free(s.engine_blocks.items,
                   s.engine_blocks.capacity * sizeof(range));
    scrub_and_free(s.thread_tops.items,
                   s.thread_tops.capacity * sizeof(range));
    scrub_and_free(s.mappings, s.mapping_capacity * sizeof *s.mappings);
    gl__elf_symbols_forget();
    if (s.error) {
        scrub_and_free(s.hits, s.hit_capacity * sizeof *s.hits);
        return s.error;
    }
    *hits = s.hits;
    *count = s.hit_count;
    return 0;
}
