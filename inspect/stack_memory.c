/*
 * stack_memory.c -- memory as a suspended greenlet sees it.
 *
 * A suspended greenlet's stack [stack_pointer, stack_stop) is in two parts:
 * the lowest saved_bytes are in its heap copy (other greenlets have used
 * that stretch of the thread's stack since), the rest is still in place.
 *
 *     stack_stop   +----------------+
 *                  | live           |  read from the thread's stack
 *                  +----------------+  stack_pointer + saved_bytes
 *                  | saved          |  read from heap_copy
 *   stack_pointer  +----------------+
 */
#define _GNU_SOURCE
#include "glinspect.h"
#include "inspect_internal.h"

#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

int gl__inspect_view(const gl_greenlet *greenlet, gl__stack_view *view)
{
    gl_greenlet_info info;
    gl_greenlet_get_info(greenlet, &info);
    if (info.state != GL_STATE_SUSPENDED)
        return GL_EINVAL;
    if (info.stack_stop <= info.stack_pointer)
        return GL_EINVAL; /* a main greenlet whose stack top is unknown */
    view->low = info.stack_pointer;
    view->high = info.stack_stop;
    view->saved_end = info.stack_pointer + info.saved_bytes;
    view->heap_copy = (const unsigned char *)info.heap_copy;
    return 0;
}

size_t gl__read_process_memory_partial(uintptr_t address, void *buffer,
                                       size_t size)
{
    struct iovec local = {buffer, size};
    struct iovec remote = {(void *)address, size};
    ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    return got > 0 ? (size_t)got : 0;
}

int gl__read_process_memory(uintptr_t address, void *buffer, size_t size)
{
    return gl__read_process_memory_partial(address, buffer, size) == size
               ? 0
               : GL_EINVAL;
}

int gl__view_read(const gl__stack_view *view, uintptr_t address,
                  void *buffer, size_t size)
{
    if (address < view->low || address > view->high ||
        size > view->high - address)
        return GL_EINVAL;
    unsigned char *out = buffer;
    if (address < view->saved_end) {
        size_t from_heap = view->saved_end - address;
        if (from_heap > size)
            from_heap = size;
        memcpy(out, view->heap_copy + (address - view->low), from_heap);
        out += from_heap;
        address += from_heap;
        size -= from_heap;
    }
    if (size)
        memcpy(out, (const void *)address, size); /* live: in place */
    return 0;
}

struct stack_read {
    const gl_greenlet *greenlet;
    uintptr_t address;
    void *buffer;
    size_t size;
};

static int read_locked(void *context)
{
    struct stack_read *r = context;
    gl__stack_view view;
    int error = gl__inspect_view(r->greenlet, &view);
    if (error)
        return error;
    return gl__view_read(&view, r->address, r->buffer, r->size);
}

int gl_read_stack(const gl_greenlet *greenlet, uintptr_t address,
                  void *buffer, size_t size)
{
    struct stack_read r = {greenlet, address, buffer, size};
    return gl_registry_call(read_locked, &r);
}
