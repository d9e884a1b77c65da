/*
 * heap_walk.c -- the hazard audit's view of anonymous memory: which bytes
 * of a mapping are live allocations, and which allocation holds a word.
 *
 * glibc's malloc lays its chunks end to end: a chunk starts with two
 * words, the previous chunk's size (or its last user word, when that one
 * is in use) and its own size, whose low bits are flags (1: the previous
 * chunk is in use; 2: the chunk is a mapping of its own; 4: it belongs to
 * an arena other than the main one). So from the first chunk of a heap
 * every chunk can be found, and a chunk is in use when the next one's
 * "previous in use" bit is set -- except chunks parked in a thread's
 * cache (tcache) or a fast bin, which malloc keeps marked in use. A
 * cached chunk carries, in its second user word, a per-process random key
 * (glibc 2.34 and later), learned here by freeing a chunk of our own.
 * Fast-bin chunks cannot be told apart: the audit first has glibc fold
 * them back into ordinary free chunks (malloc_trim, hazard_scan.c).
 *
 * Heaps come in three shapes: the main arena's, the "[heap]" mapping grown
 * with brk; the other arenas' (threads' arenas), mappings aligned to 64
 * MiB (HEAP_MAX_SIZE) that begin with a small header whose third word is
 * the used size; and chunks mapped on their own (large allocations, flag
 * 2), whose first word is their offset from the mapping's start. Adjacent
 * anonymous mappings with the same permissions merge into one line of
 * /proc/self/maps, so several mapped chunks may follow each other in one.
 * Where the first chunk starts after a header depends on glibc's version;
 * it is found by trying each aligned position and keeping the first from
 * which the chain of sizes ends exactly at the heap's end.
 *
 * Anything else is left out: CPython's own small-object arenas and the
 * memory pools of libraries (libunwind's, say) hold stale words in free
 * blocks that only their own allocator could tell from live ones. Under
 * AddressSanitizer, whose allocator replaces malloc, such memory is
 * passed on whole, and the sanitizer says which words are in live
 * allocations.
 *
 * Memory is read with process_vm_readv (gl__read_process_memory) through a
 * window: another thread may free or unmap memory meanwhile (threads
 * without the GIL keep running), and a read of a page gone is an error
 * there, not a crash.
 */
#include "heap_walk.h"
#include "inspect_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
    WORD = sizeof(uintptr_t),
    CHUNK_ALIGNMENT = 2 * WORD, /* MALLOC_ALIGNMENT on 64-bit targets */
    MINIMUM_CHUNK = 4 * WORD,
    ARENA_HEAP_SIZE = 64 << 20, /* HEAP_MAX_SIZE on 64-bit targets */
    FIRST_CHUNK_SEARCH = 8192   /* header and arena record are smaller */
};
#define PREVIOUS_IN_USE ((uintptr_t)1)
#define IS_MAPPED ((uintptr_t)2)
#define SIZE_FLAGS ((uintptr_t)7)

/* ------------------------------------------------------------- window */

/* Copies [start, start + size) into the window, as far as it can be
 * read; 0, or -1 without memory for it. The copy is mapped, not
 * malloc'd: a malloc of its size could grow the very heap being copied,
 * and the copy would not match the heap any more. */
static int window_load(gl__memory_window *w, uintptr_t start, size_t size)
{
    if (size > w->capacity) {
        size_t capacity = (size + 4095) & ~(size_t)4095;
        void *bigger = mmap(NULL, capacity, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (bigger == MAP_FAILED)
            return -1;
        gl__window_release(w);
        w->bytes = bigger;
        w->capacity = capacity;
    }
    w->start = start;
    w->end = start + gl__read_process_memory_partial(start, w->bytes, size);
    return 0;
}

int gl__window_word(gl__memory_window *w, uintptr_t address,
                    uintptr_t *word)
{
    /* A piece from the window's alignment, or else (the mapping starts
     * later) from the address's page. */
    for (uintptr_t alignment = GL_WINDOW_BYTES;
         (address < w->start || address + WORD > w->end) &&
         alignment >= 4096;
         alignment = alignment > 4096 ? 4096 : 0)
        if (window_load(w, address & ~(alignment - 1), GL_WINDOW_BYTES) != 0)
            return -1;
    if (address < w->start || address + WORD > w->end)
        return -1;
    memcpy(word, w->bytes + (address - w->start), WORD);
    return 0;
}

void gl__window_release(gl__memory_window *w)
{
    if (w->bytes)
        munmap(w->bytes, w->capacity);
    *w = (gl__memory_window){0};
}

/* ------------------------------------------------------------ tcache */

/* The key glibc writes into chunks it puts in a thread cache, or 0.
 * Learned from chunks of our own, zeroed, then freed and read through
 * the kernel (they are not ours to touch once freed). A freed chunk of
 * fast-bin size goes to its thread cache bin, which writes the key in its
 * second word, unless the bin is full (seven chunks): then to a fast bin,
 * which leaves that word zero. Taking chunks empties a bin, but a malloc
 * that finds it empty refills it from the fast bin; so several sizes are
 * tried, PROBES chunks each, and any nonzero word is the key. */
enum { PROBES = 16, PROBE_SIZES = 6 };
static uintptr_t learn_tcache_key(void)
{
    /* Called through pointers: a compiler may drop a malloc and free of
     * memory it sees no use of. */
    void *(*volatile allocate)(size_t) = malloc;
    void (*volatile release)(void *) = free;
    void *(*volatile zero)(void *, int, size_t) = memset;
    uintptr_t value = 0;
    for (size_t size = 3 * WORD; !value && size < (3 + 2 * PROBE_SIZES) * WORD;
         size += 2 * WORD) {
        uintptr_t probes[PROBES] = {0};
        for (int i = 0; i < PROBES; i++) {
            void *probe = allocate(size);
            if (probe)
                zero(probe, 0, size);
            probes[i] = (uintptr_t)probe;
        }
        for (int i = PROBES; i-- > 0;)
            if (probes[i])
                release((void *)probes[i]);
        for (int i = 0; i < PROBES && !value; i++)
            if (!probes[i] ||
                gl__read_process_memory(probes[i] + WORD, &value, WORD) != 0)
                value = 0;
    }
    return value;
}

static uintptr_t tcache_key(void)
{
    static uintptr_t key;
    static int learned;
    if (!__atomic_load_n(&learned, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&key, learn_tcache_key(), __ATOMIC_RELAXED);
        __atomic_store_n(&learned, 1, __ATOMIC_RELEASE);
    }
    return __atomic_load_n(&key, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------- chunks */

/* Walks the chunks from `first` on: returns 1 if the chain of sizes ends
 * at `end` (the last chunk is the arena's top, free) or at the fenceposts
 * glibc leaves at the end of an arena's heap it outgrew (a chunk of two
 * words, then one of none); 0 if it breaks within CHAIN_PROOF chunks (no
 * chain starts at `first`), -1 if it breaks after (a chain, torn: the
 * heap changed while it was copied). With `visit`, hands it each chunk in
 * use, its user bytes (which run to the next chunk's size word) and its
 * allocation. */
enum { CHAIN_PROOF = 8 };
static int walk_chunks(gl__memory_window *w, uintptr_t first, uintptr_t end,
                       gl__heap_visitor *visit, void *context)
{
    uintptr_t key = tcache_key();
    size_t walked = 0;
    int broken = 0;
    for (uintptr_t chunk = first; !broken; walked++) {
        uintptr_t size_word, next_size_word, second_user_word;
        if (gl__window_word(w, chunk + WORD, &size_word) != 0)
            break;
        uintptr_t size = size_word & ~SIZE_FLAGS;
        if (size == 2 * WORD && walked > 0 &&
            gl__window_word(w, chunk + 3 * WORD, &next_size_word) == 0 &&
            (next_size_word & ~SIZE_FLAGS) == 0)
            return 1; /* the fenceposts of an outgrown heap */
        if (size < MINIMUM_CHUNK || size % CHUNK_ALIGNMENT ||
            size > end - chunk)
            break;
        uintptr_t next = chunk + size;
        if (next == end)
            return 1; /* the top chunk: free space */
        if (next + 2 * WORD > end ||
            gl__window_word(w, next + WORD, &next_size_word) != 0)
            break;
        int in_use = (next_size_word & PREVIOUS_IN_USE) != 0;
        if (in_use && key &&
            gl__window_word(w, chunk + 3 * WORD, &second_user_word) == 0 &&
            second_user_word == key)
            in_use = 0; /* parked in a thread cache */
        if (in_use && visit)
            visit(chunk + 2 * WORD, next + WORD, chunk + 2 * WORD,
                  size - WORD, context);
        chunk = next;
    }
    return walked >= CHAIN_PROOF ? -1 : 0;
}

/* The first chunk of a heap whose chunks run to `end`, looked for from
 * `from` on; 0 if none fits. A chain that runs long and then breaks ends
 * the search: later candidates would be its own later chunks, each walked
 * again, and fail the same way. */
static uintptr_t first_chunk(gl__memory_window *w, uintptr_t from,
                             uintptr_t end)
{
    from = (from + CHUNK_ALIGNMENT - 1) & ~(uintptr_t)(CHUNK_ALIGNMENT - 1);
    for (uintptr_t candidate = from;
         candidate < from + FIRST_CHUNK_SEARCH && candidate < end;
         candidate += CHUNK_ALIGNMENT) {
        int walked = walk_chunks(w, candidate, end, NULL, NULL);
        if (walked == 1)
            return candidate;
        if (walked < 0)
            return 0;
    }
    return 0;
}

/* Chunks mapped on their own in [low, high): at page boundaries, since
 * the kernel merges adjacent anonymous mappings into one line of
 * /proc/self/maps (a chunk may follow another mapping, or another chunk).
 * A mapped chunk starts its page with its offset from the mapping's start
 * (0 but for aligned allocations) and a size word with IS_MAPPED. */
static void walk_mapped_chunks(gl__memory_window *w, uintptr_t low,
                               uintptr_t high, gl__heap_visitor *visit,
                               void *context)
{
    for (uintptr_t page = low; page < high;) {
        uintptr_t offset, size_word;
        uintptr_t chunk, size;
        if (gl__window_word(w, page, &offset) == 0 && offset % WORD == 0 &&
            offset < 4096 &&
            gl__window_word(w, page + offset + WORD, &size_word) == 0 &&
            (size_word & IS_MAPPED) &&
            (chunk = page + offset, size = size_word & ~SIZE_FLAGS,
             size >= MINIMUM_CHUNK && (offset + size) % 4096 == 0 &&
                 size <= high - chunk)) {
            visit(chunk + 2 * WORD, chunk + size, chunk + 2 * WORD,
                  size - 2 * WORD, context);
            page = chunk + size;
        } else {
            page += 4096;
        }
    }
}

/* Heaps larger than this are walked through pieces read on demand, which
 * other threads' allocations may tear. */
#define WHOLE_COPY_LIMIT ((size_t)256 << 20)
enum { WALK_ATTEMPTS = 3 };

void gl__heap_walk(gl__memory_window *w, uintptr_t low, uintptr_t high,
                   int is_brk_heap, gl__heap_visitor *visit, void *context)
{
    if (gl__sanitizer_allocation(0, NULL, NULL) != -2) {
        visit(low, high, 0, 0, context); /* the sanitizer tells, per word */
        return;
    }
    uintptr_t end = high, first = 0, used_size;
    if (is_brk_heap) { /* it may have grown or been trimmed since the
                          * mappings were read: it ends at the break now */
        uintptr_t brk_now = (uintptr_t)sbrk(0);
        if (brk_now > low && brk_now - low <= high - low + (64u << 20))
            end = high = brk_now;
    }
    for (int attempt = 0; attempt < WALK_ATTEMPTS && !first; attempt++) {
        if (high - low <= WHOLE_COPY_LIMIT)
            window_load(w, low, high - low);
        if (is_brk_heap) {
            first = first_chunk(w, low, end);
        } else if (low % ARENA_HEAP_SIZE == 0 &&
                   gl__window_word(w, low + 2 * WORD, &used_size) == 0 &&
                   used_size > 4 * WORD && used_size <= high - low) {
            end = low + used_size; /* past it: room not used yet */
            first = first_chunk(w, low + 4 * WORD, end);
        } else {
            break; /* not a heap of an arena */
        }
    }
    if (first)
        walk_chunks(w, first, end, visit, context);
    else if (!is_brk_heap)
        walk_mapped_chunks(w, low, high, visit, context);
}

/* --------------------------------------------------------- sanitizers */

/* AddressSanitizer's interface, when it is loaded: its allocator replaces
 * malloc, and it knows every allocation and every freed byte. */
extern const char *__asan_locate_address(void *address, char *name,
                                         size_t name_size,
                                         void **region_address,
                                         size_t *region_size)
    __attribute__((weak));
extern int __asan_address_is_poisoned(const volatile void *address)
    __attribute__((weak));

int gl__sanitizer_allocation(uintptr_t address, uintptr_t *start,
                             size_t *size)
{
    if (!__asan_locate_address || !__asan_address_is_poisoned)
        return -2;
    if (!start)
        return -1; /* only asked whether there is a sanitizer */
    if (__asan_address_is_poisoned((const void *)address))
        return 0; /* freed, or a redzone */
    void *region = NULL;
    size_t region_size = 0;
    const char *kind = __asan_locate_address((void *)address, NULL, 0,
                                             &region, &region_size);
    if (!kind || strcmp(kind, "heap") != 0 || !region)
        return -1;
    *start = (uintptr_t)region;
    *size = region_size;
    return 1;
}
