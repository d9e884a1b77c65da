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
/* Reads up to `size` bytes there; returns how many could be read. */
GL_HIDDEN size_t gl__read_process_memory_partial(uintptr_t address,
                                                 void *buffer, size_t size);

/* What in another thread's stack is the thread's setup, not its code's:
 * its frames from glibc's start_thread (the frame before the root) up,
 * and the slots where its frames saved registers still holding what the
 * thread inherited from its creator -- a new thread starts with the
 * creating thread's preserved registers, stack addresses of whatever
 * greenlet was running then, and each function saves those it will use.
 * Found by unwinding the thread from instruction `ip` and stack pointer
 * `sp` (its stack ends at `stack_end`): 1 if the walk reached the root,
 * else 0 with code_limit = stack_end and no slots (native_backtrace.c). */
enum { GL_SETUP_SLOTS = 256 };
typedef struct gl__thread_setup_words {
    uintptr_t code_limit;             /* start_thread's stack pointer */
    uintptr_t slots[GL_SETUP_SLOTS];  /* saved inherited registers */
    size_t count;
} gl__thread_setup_words;
GL_HIDDEN int gl__thread_setup(uintptr_t ip, uintptr_t sp,
                               uintptr_t stack_end,
                               gl__thread_setup_words *setup);

/* The path of a loaded object from dl_iterate_phdr's dlpi_name, which is
 * empty for the program itself: then /proc/self/exe, read into buffer. */
GL_HIDDEN const char *gl__object_path(const char *name, char *buffer,
                                      size_t size);

/* The watches' own memory (hazard_watch.c), which holds the stack
 * addresses they watch and the writers' frames: for the audit to leave
 * out, as the engine's. */
GL_HIDDEN void gl__watch_blocks(gl_block_visitor *visit, void *context);

/* Names the data symbol of the ELF object at `path` (loaded with load
 * bias `bias`, as dl_iterate_phdr's dlpi_addr) that covers `address`:
 * its name into name[size] and address - its start into *offset.
 * Looks in .symtab (static symbols: what dladdr cannot see), then
 * .dynsym. Returns 1 if found, 0 if not (no such symbol, stripped,
 * unreadable file), never crashes on a malformed file. The last file
 * stays mapped for the next call (elf_symbols.c). */
GL_HIDDEN int gl__elf_data_symbol(const char *path, uintptr_t bias,
                                  uintptr_t address, char *name,
                                  size_t size, uintptr_t *offset);
/* The same for the symbols of `kind`: GL__ELF_DATA as above, or
 * GL__ELF_FUNCTIONS (STT_FUNC: static functions, for a backtrace). */
enum { GL__ELF_DATA = 1, GL__ELF_FUNCTIONS = 2 };
GL_HIDDEN int gl__elf_symbol(const char *path, uintptr_t bias,
                             uintptr_t address, int kind, char *name,
                             size_t size, uintptr_t *offset);
/* Unmaps the file that gl__elf_data_symbol keeps (for tests and leak
 * checkers); the next call maps it again. */
GL_HIDDEN void gl__elf_symbols_forget(void);

#endif /* GL_INSPECT_INTERNAL_H */
