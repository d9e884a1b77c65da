/*
 * sanitizers.h -- what the switch tells AddressSanitizer, and nothing in
 * builds without it.
 *
 * ASan keeps "shadow" bytes that mark the red zones around each stack
 * frame's variables. Stack copying breaks its picture in two ways: saving
 * reads a frame's red zones (which ASan reports), and after a switch the
 * shadow of the stack still describes the frames of whichever greenlet ran
 * there last. So: the bytes being saved are unpoisoned first; and when a
 * greenlet resumes, the shadow of the stack it is about to use -- from the
 * deepest point any switch reached up to the end of its restored bytes --
 * is cleared. Its restored frames lose their red zones (no false reports,
 * a few missed ones); frames it calls from then on get fresh ones.
 * The fiber-switch calls keep ASan's per-greenlet fake stacks (for
 * use-after-return detection) apart.
 */
#ifndef GL_SANITIZERS_H
#define GL_SANITIZERS_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define GL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GL_ASAN 1
#endif
#endif

#ifdef GL_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>

static inline void gl__sanitizer_stack_readable(const char *from, size_t bytes)
{
    __asan_unpoison_memory_region(from, bytes);
}

static inline void gl__sanitizer_stack_reused(const char *low, const char *high)
{
    if (low < high)
        __asan_unpoison_memory_region(low, (size_t)(high - low));
}

/* Keeps *deepest at the lowest stack pointer of any switch so far. */
static inline void gl__sanitizer_note_switch_pointer(char **deepest,
                                                     char *stack_pointer)
{
    if (stack_pointer < *deepest)
        *deepest = stack_pointer;
}

/* `fake_stack` is where the leaving greenlet's fake stack is kept, or NULL
 * when it will never run again. */
static inline void gl__sanitizer_switch_begin(void **fake_stack,
                                              const char *low,
                                              const char *high)
{
    __sanitizer_start_switch_fiber(fake_stack, low, (size_t)(high - low));
}

static inline void gl__sanitizer_switch_end(void *fake_stack)
{
    __sanitizer_finish_switch_fiber(fake_stack, NULL, NULL);
}
#else
static inline void gl__sanitizer_stack_readable(const char *from, size_t bytes)
{
    (void)from;
    (void)bytes;
}
static inline void gl__sanitizer_stack_reused(const char *low, const char *high)
{
    (void)low;
    (void)high;
}
static inline void gl__sanitizer_note_switch_pointer(char **deepest,
                                                     char *stack_pointer)
{
    (void)deepest;
    (void)stack_pointer;
}
static inline void gl__sanitizer_switch_begin(void **fake_stack,
                                              const char *low,
                                              const char *high)
{
    (void)fake_stack;
    (void)low;
    (void)high;
}
static inline void gl__sanitizer_switch_end(void *fake_stack)
{
    (void)fake_stack;
}
#endif /* GL_ASAN */

#endif /* GL_SANITIZERS_H */
