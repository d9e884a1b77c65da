/*
 * switch_x86_64_sysv_elf.S -- the register switch for x86-64, System V
 * ABI, ELF. Included by arch/switch.S.
 *
 * Implements (see src/engine.h):
 *
 *   int gl__stack_switch(gl__thread *thread);
 *   noreturn: gl__greenlet_trampoline(gl__thread *thread)
 *
 * calling the C steps gl__switch_save, gl__switch_refill, gl__switch_arrive
 * and gl__greenlet_begin.
 *
 * ABI: System V AMD64 psABI 1.0, section 3.2. Callee-saved: rbx, rbp,
 * r12-r15, the control bits of MXCSR and the x87 control word (3.2.1).
 * The direction flag is clear at calls and stays so. Everything else is
 * dead across a call, so it is not saved.
 *
 * The switch frame, at a suspended greenlet's stack_pointer:
 *
 *   offset  size  content
 *       0     4   MXCSR
 *       4     2   x87 FPU control word
 *       8     8   r15
 *      16     8   r14
 *      24     8   r13
 *      32     8   r12
 *      40     8   rbx
 *      48     8   rbp
 *      56     8   return address into the caller of gl__stack_switch
 *   CFA = stack_pointer + 64
 *
 * Resuming: the refill step copies the target's bytes back, except its
 * switch frame when that lies whole in its heap copy, and says where the
 * frame is; the registers and the return address are loaded from there
 * (src/engine.h says why not through the stack), and the stack pointer
 * moves past the frame's place.
 *
 * The CFI describes this frame at every instruction where it is complete,
 * so gdb, libunwind and the C++ unwinder walk from a suspended greenlet's
 * switch frame into its callers: on the stack, and from the refill step on,
 * wherever r12 says the frame is (DW_CFA_expression rules). While the
 * refill step runs, it says instead that the return address is undefined.
 * gl__greenlet_trampoline, the root of every greenlet's stack, says that
 * its return address is undefined: backtraces end there cleanly.
 *
 * Returning: the CPU predicts a `ret` from its return-stack, which here
 * holds the origin's return address (the call it pairs with was the
 * origin's). When the resumed greenlet returns to the same place, as when
 * every greenlet switches from one call site (the Python binding, gevent's
 * hub), the routine ends in `ret`, predicted right, and the return-stack
 * stays in step for the returns that follow. Otherwise it ends in an
 * indirect jump, predicted from branch history, which learns the targets
 * of a ping-pong: a `ret` there was mispredicted on every switch, 11 of
 * 25 ns per switch in bench/switch_bench.c. A failed switch returns to its
 * own caller with `ret`.
 *
 * CET: each entry point begins with endbr64 and the object is marked
 * IBT-compatible. The jump back carries `notrack`, since a return address
 * is no endbr64 landing pad (GCC marks its switch-table jumps the same
 * way). It is not marked shadow-stack compatible, and must not be:
 * returning into another greenlet is exactly what a shadow stack forbids.
 */

/* CFI: the switch frame's registers are at r12 + their offset in the
 * frame (wherever r12 points: the stack or a heap copy), each rule written
 * as DW_CFA_expression (0x10), DWARF register, length 2, DW_OP_breg12
 * (0x7c) and the offset. The CFA stays rsp + 64. */
    .macro  FRAME_AT_R12
    .cfi_escape 0x10, 16, 2, 0x7c, 56   /* return address */
    .cfi_escape 0x10, 6, 2, 0x7c, 48    /* rbp */
    .cfi_escape 0x10, 3, 2, 0x7c, 40    /* rbx */
    .cfi_escape 0x10, 12, 2, 0x7c, 32   /* r12 */
    .cfi_escape 0x10, 13, 2, 0x7c, 24   /* r13 */
    .cfi_escape 0x10, 14, 2, 0x7c, 16   /* r14 */
    .cfi_escape 0x10, 15, 2, 0x7c, 8    /* r15 */
    .endm

    .text

/* int gl__stack_switch(gl__thread *thread) */
    .globl  gl__stack_switch
    .hidden gl__stack_switch
    .type   gl__stack_switch, @function
    .p2align 4
gl__stack_switch:
    .cfi_startproc
    endbr64                         /* a valid indirect-branch target */
    pushq   %rbp                    /* callee-saved registers of the origin */
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq    $8, %rsp                /* room for the FP control words; the */
    .cfi_adjust_cfa_offset 8        /* stack is 16-byte aligned again */
    stmxcsr (%rsp)                  /* SSE control and status */
    fnstcw  4(%rsp)                 /* x87 control word */

    movq    %rdi, %rbx              /* keep the thread record across calls */
    movq    56(%rsp), %r13          /* and the origin's return address */
    movq    %rsp, %rsi              /* the origin's stack pointer */
    call    gl__switch_save         /* -> rax: target sp, rdx: action */
.Lsuspended:                        /* where a suspended frame stands */
    testq   %rdx, %rdx
    jnz     .Lnot_a_move            /* start a greenlet, or an error */

    movq    %rax, %rsp              /* onto the target's stack */
    .cfi_remember_state             /* (the full frame, for .Lnot_a_move) */
    .cfi_undefined %rip             /* its frame is not back yet: unwinders */
    movq    %rbx, %rdi              /* that interrupt the copy stop here */
    call    gl__switch_refill       /* copy the target's bytes back */
    movq    %rax, %r12              /* -> where its switch frame is: in */
    FRAME_AT_R12                    /* place, or still in its heap copy */
    movq    %rbx, %rdi
    call    gl__switch_arrive       /* hooks, and the target's reply */

    ldmxcsr (%r12)                  /* the resumed greenlet's FP state */
    fldcw   4(%r12)
    movq    56(%r12), %rcx          /* its return address: the origin's? */
    .cfi_register %rip, %rcx
    cmpq    %rcx, %r13              /* (no flags change from here on) */
    movq    8(%r12), %r15           /* its callee-saved registers */
    .cfi_restore %r15
    movq    16(%r12), %r14
    .cfi_restore %r14
    movq    24(%r12), %r13
    .cfi_restore %r13
    movq    40(%r12), %rbx
    .cfi_restore %rbx
    movq    48(%r12), %rbp
    .cfi_restore %rbp
    movq    32(%r12), %r12
    .cfi_restore %r12
    leaq    64(%rsp), %rsp          /* the frame's place on the stack */
    .cfi_adjust_cfa_offset -64
    movl    $0, %eax                /* the target's gl__stack_switch -> 0 */
    jne     .Ljump_back             /* see "Returning" at the top */
    pushq   %rcx
    .cfi_adjust_cfa_offset 8
    .cfi_offset %rip, -8
    ret
.Ljump_back:
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rcx
    notrack jmp *%rcx

.Lnot_a_move:
    .cfi_restore_state              /* the full frame is still in place */
    js      .Lfailed                /* negative action: an error code */
    movq    %rbx, %rdi              /* start the target right below us */
    call    gl__greenlet_trampoline /* never returns */
    ud2

.Lfailed:                           /* nothing moved: return the error */
    movl    %edx, %eax              /* to our own caller */
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    ret
    .cfi_endproc
    .size   gl__stack_switch, .-gl__stack_switch

/* The root frame of every greenlet. Entered by a call with the stack
 * 16-byte aligned, so at entry rsp = 8 (mod 16). */
    .globl  gl__greenlet_trampoline
    .hidden gl__greenlet_trampoline
    .type   gl__greenlet_trampoline, @function
    .p2align 4
gl__greenlet_trampoline:
    .cfi_startproc
    .cfi_undefined %rip             /* the outermost frame of this greenlet */
    endbr64
    xorl    %ebp, %ebp              /* frame-pointer chains end here too */
    subq    $8, %rsp                /* align for the call below */
    .cfi_adjust_cfa_offset 8
    call    gl__greenlet_begin      /* runs the greenlet; never returns */
    ud2
    .cfi_endproc
    .size   gl__greenlet_trampoline, .-gl__greenlet_trampoline

/* const void *const gl__switch_suspended_ip: an instruction address whose
 * CFI describes the switch frame, for unwinders of suspended greenlets. */
    .section .data.rel.ro, "aw"
    .p2align 3
    .globl  gl__switch_suspended_ip
    .hidden gl__switch_suspended_ip
    .type   gl__switch_suspended_ip, @object
    .size   gl__switch_suspended_ip, 8
gl__switch_suspended_ip:
    .quad   .Lsuspended

/* IBT only: see the top of the file. */
    .section .note.gnu.property, "a"
    .p2align 3
    .long   4                       /* name size: "GNU\0" */
    .long   16                      /* descriptor size */
    .long   5                       /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000002              /* GNU_PROPERTY_X86_FEATURE_1_AND */
    .long   4                       /* data size */
    .long   1                       /* GNU_PROPERTY_X86_FEATURE_1_IBT */
    .p2align 3

    .section .note.GNU-stack, "", @progbits
