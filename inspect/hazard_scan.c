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
 * buffer across a switch.
 *
 * What is scanned:
 * - the writable segments (PT_LOAD with PF_W: .data, .bss, .got and the
 *   like) of every loaded object, word by word, each word looked up among
 *   the saved regions. A holder is attributed to its object and, when the
 *   object's dynamic symbol table has one covering it, its symbol;
 * - the stacks of the process's other threads, from each one's stack
 *   pointer up to the end of its stack's mapping: the live part only,
 *   so that old values below the stack pointer are not hits. The stack
 *   pointer of a thread waiting in a system call is in
 *   /proc/self/task/TID/syscall ("NR ARG1..ARG6 SP PC"); a thread that is
 *   running on a CPU (rare: every Python thread but the scanning one
 *   waits for the GIL) cannot be scanned. Words pointing into the saved
 *   stacks of the thread's own greenlets are not hits there: its running
 *   greenlet's frames use those addresses now.
 * The scanning thread's own stack is not scanned, nor the engine's
 * monitor thread's (its frames hold copies of records). Words the runtime keeps and handles
 * correctly (CPython's thread states point at the running greenlet's C
 * frame record, say) are left out through the `known` callback.
 *
 * The caller must keep greenlets from switching during the scan (the
 * CPython binding holds the GIL), as for gl_read_stack; the registry lock
 * is held while the regions are collected, not while memory is scanned.
 */
#define _GNU_SOURCE
#include "glinspect.h"
#include "inspect_internal.h"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <inttypes.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct saved_region {
    uintptr_t low, high;
    uint64_t greenlet_id;
    int64_t thread_os_id;
    uintptr_t reach; /* see index_regions */
} saved_region;

typedef struct scan {
    saved_region *regions;
    size_t region_count, region_capacity;
    gl_hazard_known *known;
    void *context;
    gl_hazard_hit *hits;
    size_t hit_count, hit_capacity;
    int error;
} scan;

/* ------------------------------------------------------------- regions */

static int collect_region(const gl_greenlet_info *g, void *context)
{
    scan *s = context;
    if (g->state != GL_STATE_SUSPENDED || g->saved_bytes == 0 ||
        g->stack_pointer == 0)
        return 0;
    if (s->region_count == s->region_capacity) {
        size_t capacity = s->region_capacity ? 2 * s->region_capacity : 64;
        saved_region *bigger =
            realloc(s->regions, capacity * sizeof *bigger);
        if (!bigger) {
            s->error = GL_ENOMEM;
            return 1;
        }
        s->regions = bigger;
        s->region_capacity = capacity;
    }
    s->regions[s->region_count++] = (saved_region){
        g->stack_pointer, g->stack_pointer + g->saved_bytes, g->id,
        g->thread_os_id, 0};
    return 0;
}

static int walk_registry(void *context)
{
    gl_registry_walk(NULL, collect_region, context);
    return 0;
}

static int by_low(const void *a, const void *b)
{
    uintptr_t x = ((const saved_region *)a)->low;
    uintptr_t y = ((const saved_region *)b)->low;
    return x < y ? -1 : x > y;
}

/* Regions overlap: greenlets of one thread that started at the same depth
 * (a hub's handlers) use the same addresses, and each of them that is
 * suspended may hold its own saved bytes for them. So an address may be
 * in many regions; after sorting by `low`, `reach[i]` is the highest
 * `high` among regions 0..i, which bounds the walk back from the last
 * region starting at or below an address. */
static void index_regions(scan *s)
{
    qsort(s->regions, s->region_count, sizeof *s->regions, by_low);
    uintptr_t reach = 0;
    for (size_t i = 0; i < s->region_count; i++) {
        if (s->regions[i].high > reach)
            reach = s->regions[i].high;
        s->regions[i].reach = reach;
    }
}

/* The number of regions starting at or below `address`: the regions that
 * may hold it are among the first that many. */
static size_t regions_up_to(const scan *s, uintptr_t address)
{
    size_t low = 0, high = s->region_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (s->regions[middle].low <= address)
            low = middle + 1;
        else
            high = middle;
    }
    return low;
}

/* --------------------------------------------------------------- hits */

/* Names the holder: its object, and the dynamic symbol that covers it. */
static void attribute(gl_hazard_hit *hit, const char *object)
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
    }
}

/* Where the words being scanned are. */
typedef struct holder_place {
    int kind;            /* enum gl_hazard_place */
    const char *object;  /* GL_HAZARD_IN_OBJECT: its path */
    int64_t thread;      /* GL_HAZARD_IN_THREAD_STACK: its tid */
} holder_place;

static void add_hit(scan *s, uintptr_t holder, uintptr_t target,
                    const saved_region *region, const holder_place *place)
{
    if (s->known && s->known(holder, s->context))
        return;
    if (s->hit_count == s->hit_capacity) {
        size_t capacity = s->hit_capacity ? 2 * s->hit_capacity : 16;
        gl_hazard_hit *bigger = realloc(s->hits, capacity * sizeof *bigger);
        if (!bigger) {
            s->error = GL_ENOMEM;
            return;
        }
        s->hits = bigger;
        s->hit_capacity = capacity;
    }
    gl_hazard_hit *hit = &s->hits[s->hit_count++];
    *hit = (gl_hazard_hit){.holder = holder,
                           .target = target,
                           .greenlet_id = region->greenlet_id,
                           .thread_os_id = region->thread_os_id,
                           .region_low = region->low,
                           .region_high = region->high,
                           .holder_kind = place->kind,
                           .holder_thread_os_id = place->thread};
    if (place->kind == GL_HAZARD_IN_OBJECT)
        attribute(hit, place->object);
}

/* ------------------------------------------------------------ objects */

/* Reads every word of other objects' data, redzones between the globals
 * of instrumented objects included: AddressSanitizer must not check these
 * reads (they are deliberate, and within mapped segments). */
__attribute__((no_sanitize_address)) static void
scan_words(scan *s, uintptr_t start, uintptr_t end, const holder_place *place)
{
    start = (start + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    for (uintptr_t at = start; at + sizeof(uintptr_t) <= end && !s->error;
         at += sizeof(uintptr_t)) {
        uintptr_t word = *(const volatile uintptr_t *)at;
        /* Every region holding the word: walking back from the last one
         * that starts at or below it, while some region so far reaches
         * past it. */
        for (size_t i = regions_up_to(s, word);
             i > 0 && s->regions[i - 1].reach > word && !s->error; i--)
            if (s->regions[i - 1].high > word &&
                s->regions[i - 1].thread_os_id != place->thread)
                add_hit(s, at, word, &s->regions[i - 1], place);
    }
}

static int scan_object(struct dl_phdr_info *info, size_t size, void *context)
{
    (void)size;
    scan *s = context;
    char program[256] = "";
    const char *object = info->dlpi_name;
    if (!object || !*object) { /* the program itself */
        ssize_t n = readlink("/proc/self/exe", program, sizeof program - 1);
        program[n > 0 ? n : 0] = '\0';
        object = program;
    }
    for (int i = 0; i < info->dlpi_phnum && !s->error; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        if (segment->p_type != PT_LOAD || !(segment->p_flags & PF_W))
            continue;
        uintptr_t start = info->dlpi_addr + segment->p_vaddr;
        holder_place place = {GL_HAZARD_IN_OBJECT, object, 0};
        scan_words(s, start, start + segment->p_memsz, &place);
    }
    return s->error != 0;
}

/* ------------------------------------------------------ thread stacks */

/* The stack pointer of thread `tid` while it waits in a system call, or
 * 0 (running, gone, unreadable). */
static uintptr_t waiting_stack_pointer(long tid)
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
    return (uintptr_t)fields[7];
}

/* The end of the writable mapping holding `address`, or 0. */
static uintptr_t mapping_end(uintptr_t address)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    if (!maps)
        return 0;
    char line[512];
    uintptr_t end = 0;
    while (!end && fgets(line, sizeof line, maps)) {
        uintptr_t low, high;
        char permissions[8];
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &low, &high,
                   permissions) == 3 &&
            low <= address && address < high && permissions[1] == 'w')
            end = high;
        /* lines cut at the buffer's size: the rest is read as a line
         * that does not parse, and skipped */
    }
    fclose(maps);
    return end;
}

static void scan_thread_stacks(scan *s)
{
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks)
        return;
    long self = (long)syscall(SYS_gettid);
    long monitor = (long)gl_monitor_thread_os_id(); /* the engine's own */
    for (struct dirent *task; !s->error && (task = readdir(tasks));) {
        long tid = strtol(task->d_name, NULL, 10);
        if (tid <= 0 || tid == self || tid == monitor)
            continue;
        uintptr_t sp = waiting_stack_pointer(tid);
        uintptr_t end = sp ? mapping_end(sp) : 0;
        holder_place place = {GL_HAZARD_IN_THREAD_STACK, NULL, tid};
        if (end)
            scan_words(s, sp, end, &place);
    }
    closedir(tasks);
}

int gl_hazard_scan(gl_hazard_known *known, void *context,
                   gl_hazard_hit **hits, size_t *count)
{
    if (!hits || !count)
        return GL_EINVAL;
    *hits = NULL;
    *count = 0;
    scan s = {.known = known, .context = context};
    gl_registry_call(walk_registry, &s);
    if (!s.error && s.region_count) {
        index_regions(&s);
        dl_iterate_phdr(scan_object, &s);
        scan_thread_stacks(&s);
    }
    free(s.regions);
    if (s.error) {
        free(s.hits);
        return s.error;
    }
    *hits = s.hits;
    *count = s.hit_count;
    return 0;
}
