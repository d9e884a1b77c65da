/*
 * native_backtrace.c -- the C frames of a suspended greenlet, by libunwind.
 *
 * libunwind normally unwinds the stack it runs on. A suspended greenlet's
 * frames are elsewhere: partly in place, partly in a heap copy. So we give
 * libunwind an address space of its own whose memory reads go through the
 * greenlet's view of its stack (stack_memory.c) and whose initial registers
 * are those of the greenlet's switch frame: the engine's switch-frame
 * instruction address and the saved stack pointer. The CFI of arch/ then
 * tells libunwind where every other register was saved, and the root frame
 * (the trampoline) ends the walk with an undefined return address.
 * Looking up unwind tables and symbol names is left to libunwind's own
 * local accessors, since code and tables are this process's own.
 */
#define _GNU_SOURCE
#include "glinspect.h"
#include "inspect_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <libunwind.h>
#include <stdio.h>
#include <string.h>

struct unwind_target {
    gl__stack_view view;
    uintptr_t ip;
};

static int read_memory(unw_addr_space_t space, unw_word_t address,
                       unw_word_t *value, int write, void *argument)
{
    (void)space;
    struct unwind_target *target = argument;
    if (write)
        return -UNW_EREADONLYREG;
    if (gl__view_read(&target->view, address, value, sizeof *value) == 0)
        return 0;
    /* Not the greenlet's stack: unwind tables, or a bad pointer in a
     * corrupt frame, which must fail the read, not crash the reader. */
    if (gl__read_process_memory(address, value, sizeof *value) == 0)
        return 0;
    return -UNW_EINVAL;
}

static int read_register(unw_addr_space_t space, unw_regnum_t number,
                         unw_word_t *value, int write, void *argument)
{
    (void)space;
    struct unwind_target *target = argument;
    if (write)
        return -UNW_EREADONLYREG;
    if (number == UNW_REG_IP)
        *value = target->ip;
    else if (number == UNW_REG_SP)
        *value = target->view.low;
    else
        *value = 0; /* the CFI says where the caller's values are */
    return 0;
}

static int read_fp_register(unw_addr_space_t space, unw_regnum_t number,
                            unw_fpreg_t *value, int write, void *argument)
{
    (void)space;
    (void)number;
    (void)value;
    (void)write;
    (void)argument;
    return -UNW_EBADREG;
}

static int refuse_resume(unw_addr_space_t space, unw_cursor_t *cursor,
                         void *argument)
{
    (void)space;
    (void)cursor;
    (void)argument;
    return -UNW_EINVAL;
}

/* One address space for every walk and thread, made once. libunwind
 * caches unwind tables per address space, which is what we want: they
 * describe this process's code, whatever greenlet is walked; per-thread
 * caching lets threads walk at once. */
static unw_addr_space_t shared_space;
static pthread_once_t shared_space_once = PTHREAD_ONCE_INIT;

static void create_shared_space(void)
{
    unw_accessors_t accessors = *unw_get_accessors(unw_local_addr_space);
    accessors.access_mem = read_memory;
    accessors.access_reg = read_register;
    accessors.access_fpreg = read_fp_register;
    accessors.resume = refuse_resume;
    shared_space = unw_create_addr_space(&accessors, 0);
    if (shared_space)
        unw_set_caching_policy(shared_space, UNW_CACHE_PER_THREAD);
}

static unw_addr_space_t greenlet_address_space(void)
{
    pthread_once(&shared_space_once, create_shared_space);
    return shared_space;
}

static void describe_frame(uintptr_t ip, gl_native_frame *frame,
                           unw_cursor_t *cursor)
{
    unw_word_t offset = 0, sp = 0;
    frame->ip = ip;
    frame->sp = unw_get_reg(cursor, UNW_REG_SP, &sp) == 0 ? (uintptr_t)sp : 0;
    frame->offset = 0;
    frame->function[0] = '\0';
    frame->object[0] = '\0';
    if (unw_get_proc_name(cursor, frame->function, sizeof frame->function,
                          &offset) == 0)
        frame->offset = offset;
    else
        frame->function[0] = '\0';
    Dl_info where;
    if (dladdr((void *)ip, &where) && where.dli_fname)
        snprintf(frame->object, sizeof frame->object, "%s", where.dli_fname);
}

struct backtrace_job {
    const gl_greenlet *greenlet;
    gl_native_frame *frames;
    size_t capacity;
    size_t *count;
};

static int walk_locked(void *context)
{
    struct backtrace_job *job = context;
    struct unwind_target target;
    size_t *count = job->count;
    int error = gl__inspect_view(job->greenlet, &target.view);
    if (error)
        return error;
    target.ip = gl_switch_frame_ip();
    unw_addr_space_t space = greenlet_address_space();
    if (!space)
        return GL_ENOMEM;
    unw_cursor_t cursor;
    if (unw_init_remote(&cursor, space, &target) < 0)
        return 0;
    for (;;) {
        if (*count == job->capacity)
            return 0;
        unw_word_t ip;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0)
            return 0;
        describe_frame((uintptr_t)ip, &job->frames[(*count)++], &cursor);
        int stepped = unw_step(&cursor);
        if (stepped == 0)
            return 1; /* the root frame: its return address is undefined */
        if (stepped < 0)
            return 0;
    }
}

/* The registers a called function must preserve, which it saves in its
 * frame before it uses them. */
#if defined(__x86_64__)
static const int preserved_registers[] = {
    UNW_X86_64_RBX, UNW_X86_64_RBP, UNW_X86_64_R12,
    UNW_X86_64_R13, UNW_X86_64_R14, UNW_X86_64_R15};
#elif defined(__aarch64__)
static const int preserved_registers[] = {
    UNW_AARCH64_X19, UNW_AARCH64_X20, UNW_AARCH64_X21, UNW_AARCH64_X22,
    UNW_AARCH64_X23, UNW_AARCH64_X24, UNW_AARCH64_X25, UNW_AARCH64_X26,
    UNW_AARCH64_X27, UNW_AARCH64_X28, UNW_AARCH64_X29};
#else
#error "preserved registers: unknown CPU"
#endif
enum { PRESERVED = sizeof preserved_registers / sizeof *preserved_registers };

int gl__thread_setup(uintptr_t ip, uintptr_t sp, uintptr_t stack_end,
                     gl__thread_setup_words *setup)
{
    setup->code_limit = stack_end;
    setup->count = 0;
    struct unwind_target target = {{sp, stack_end, sp, NULL}, ip};
    unw_addr_space_t space = greenlet_address_space();
    unw_cursor_t cursor;
    if (!space || unw_init_remote(&cursor, space, &target) < 0)
        return 0;
    /* Every slot where a frame saved a preserved register, as the walk
     * goes; at the root, the registers hold what the thread started
     * with. */
    unw_word_t previous_sp = 0;
    for (int frames = 0; frames < 512; frames++) {
        unw_word_t frame_sp;
        if (unw_get_reg(&cursor, UNW_REG_SP, &frame_sp) < 0)
            return 0;
        for (int r = 0; r < PRESERVED && setup->count < GL_SETUP_SLOTS; r++) {
            unw_save_loc_t where;
            if (unw_get_save_loc(&cursor, preserved_registers[r], &where) ==
                    0 &&
                where.type == UNW_SLT_MEMORY)
                setup->slots[setup->count++] = (uintptr_t)where.u.addr;
        }
        int stepped = unw_step(&cursor);
        if (stepped < 0)
            return 0;
        if (stepped > 0) {
            previous_sp = frame_sp;
            continue;
        }
        /* The root (clone3 or clone, whose CFI ends the walk); the frame
         * before it is start_thread, static in glibc, nameless in every
         * symbol table that ships. */
        if (previous_sp > sp && previous_sp <= stack_end)
            setup->code_limit = (uintptr_t)previous_sp;
        uintptr_t inherited[PRESERVED];
        for (int r = 0; r < PRESERVED; r++) {
            unw_word_t value = 0;
            unw_get_reg(&cursor, preserved_registers[r], &value);
            inherited[r] = (uintptr_t)value;
        }
        /* Keep the slots that hold an inherited value: the others hold
         * what the thread's own code put in its registers. */
        size_t kept = 0;
        for (size_t i = 0; i < setup->count; i++) {
            uintptr_t value;
            if (gl__read_process_memory(setup->slots[i], &value,
                                        sizeof value) != 0)
                continue;
            for (int r = 0; r < PRESERVED; r++)
                if (inherited[r] && value == inherited[r]) {
                    setup->slots[kept++] = setup->slots[i];
                    break;
                }
        }
        setup->count = kept;
        return 1;
    }
    return 0;
}

int gl_native_backtrace(const gl_greenlet *greenlet, gl_native_frame *frames,
                        size_t capacity, size_t *count)
{
    struct backtrace_job job = {greenlet, frames, capacity, count};
    *count = 0;
    return gl_registry_call(walk_locked, &job);
}
