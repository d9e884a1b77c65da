/*
 * memory.c -- the allocator hook. Every byte the engine holds (records and
 * heap copies of stacks) comes through here, so a test can make any
 * allocation fail and check that the engine reports it and stays usable.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

static void *libc_allocate(size_t size, void *context)
{
    (void)context;
    return malloc(size);
}

static void *libc_reallocate(void *memory, size_t size, void *context)
{
    (void)context;
    return realloc(memory, size);
}

static void libc_release(void *memory, void *context)
{
    (void)context;
    free(memory);
}

static const gl_allocator libc_allocator = {libc_allocate, libc_reallocate,
                                            libc_release, NULL};
static gl_allocator active = {libc_allocate, libc_reallocate, libc_release,
                              NULL};

void gl_set_allocator(const gl_allocator *allocator)
{
    active = allocator ? *allocator : libc_allocator;
}

void *gl__allocate(size_t size)
{
    return active.allocate(size, active.context);
}

void *gl__reallocate(void *memory, size_t size)
{
    return active.reallocate(memory, size, active.context);
}

void gl__release(void *memory)
{
    if (memory)
        active.release(memory, active.context);
}

void gl__release_scrubbed(void *memory, size_t bytes)
{
    if (memory) {
        explicit_bzero(memory, bytes);
        active.release(memory, active.context);
    }
}
