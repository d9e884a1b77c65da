/*
 * heap_walk.h -- anonymous memory as the hazard audit sees it: live
 * allocations of glibc's malloc, and whatever a sanitizer knows of its
 * own heap (heap_walk.c says how).
 */
#ifndef GL_HEAP_WALK_H
#define GL_HEAP_WALK_H

#include "inspect_internal.h"

/* A copy of a piece of this process's memory, read through the kernel:
 * reads of pages unmapped meanwhile fail instead of faulting. A heap is
 * copied whole before it is walked, so that the walk sees one moment of
 * it even while other threads allocate (their chunks would otherwise
 * change under the walk); pieces of GL_WINDOW_BYTES are read on demand
 * beyond what was copied. */
enum { GL_WINDOW_BYTES = 64 * 1024 };
typedef struct gl__memory_window {
    uintptr_t start, end;  /* the bytes held: [start, end) */
    unsigned char *bytes;  /* mapped, `capacity` long */
    size_t capacity;
} gl__memory_window;

/* The word at `address` (aligned): 0, or -1 if that memory cannot be
 * read. */
GL_HIDDEN int gl__window_word(gl__memory_window *w, uintptr_t address,
                              uintptr_t *word);

/* Frees the window's copy. */
GL_HIDDEN void gl__window_release(gl__memory_window *w);

/* Bytes [start, end) in use, held by the allocation at `allocation` of
 * `size` bytes (0 and 0: not known to be an allocation). */
typedef void gl__heap_visitor(uintptr_t start, uintptr_t end,
                              uintptr_t allocation, size_t size,
                              void *context);

/* Hands `visit` the parts of the anonymous mapping [low, high) that may
 * hold live data: each allocation in use when the mapping is a malloc
 * heap (`is_brk_heap`: it is the main arena's "[heap]"), else, under a
 * sanitizer, the whole mapping. Free chunks are left out. `visit` reads the words through
 * `w`, which holds the copy the walk saw, in a mapping of its own made
 * after the caller listed the mappings to scan. */
GL_HIDDEN void gl__heap_walk(gl__memory_window *w, uintptr_t low,
                             uintptr_t high, int is_brk_heap,
                             gl__heap_visitor *visit, void *context);

/* Under AddressSanitizer: 1 and the allocation holding `address`, 0 if
 * the address is freed memory or a redzone, -1 if not its heap (or with
 * `start` NULL: only asked). -2: no sanitizer. */
GL_HIDDEN int gl__sanitizer_allocation(uintptr_t address, uintptr_t *start,
                                       size_t *size);

#endif /* GL_HEAP_WALK_H */
