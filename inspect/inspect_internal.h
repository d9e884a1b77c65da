/*
 * inspect_internal.h -- what the files of inspect/ share: a greenlet's
 * stack as a readable view, and reads of this process's memory that fail
 * instead of crashing.
 */
#ifndef GL_INSPECT_INTERNAL_H
#define GL_INSPECT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "glengine.h"

#define GL_HIDDEN __attribute__((visibility("hidden")))

/* A suspended greenlet's stack [low, high): [low, saved_end) is at
 * heap_copy, the rest in place. */
typedef struct gl__stack_view {
    uintptr_t low, high, saved_end;
    const unsigned char *heap_copy;
} gl__stack_view;

/* Fills *view for a suspended greenlet; GL_EINVAL if it is not suspended.
 * For another thread's greenlet, under the conditions of glinspect.h. */
GL_HIDDEN int gl__inspect_view(const gl_greenlet *greenlet,
                               gl__stack_view *view);
/* Copies [address, address + size), which must lie within the view, as the
 * greenlet sees it. GL_EINVAL if it does not lie within. */
GL_HIDDEN int gl__view_read(const gl__stack_view *view, uintptr_t address,
                            void *buffer, size_t size);
/* Reads this process's memory without faulting: GL_EINVAL if unmapped. */
GL_HIDDEN int gl__read_process_memory(uintptr_t address, void *buffer,
                                      size_t size);

#endif /* GL_INSPECT_INTERNAL_H */
