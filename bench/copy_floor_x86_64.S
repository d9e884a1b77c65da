/*
 * copy_floor_x86_64.S -- the bare stack-copying switch of copy_floor.h,
 * for x86-64 System V. The frame is the engine's (arch/switch_x86_64_
 * sysv_elf.S): MXCSR and x87 control word, r15, r14, r13, r12, rbx, rbp,
 * return address. Bytes below the frame's end that a side needs are
 * copied by memcpy; a resumed side's registers are read from its copy when
 * the frame is there, and it is returned to with `ret` when it returns
 * where the leaving side would (return-stack predictor), else with a jump.
 * On other CPUs this file is empty.
 */
#if defined(__x86_64__)

    .text

/* Pushes the frame; leaves rsp at it. */
    .macro  PUSH_FRAME
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    .endm

/* void copy_floor_switch(copy_floor_side *from, copy_floor_side *to) */
    .globl  copy_floor_switch
    .type   copy_floor_switch, @function
    .p2align 4
copy_floor_switch:
    .cfi_startproc
    PUSH_FRAME
    movq    %rsi, %r12              /* to */
    movq    56(%rsp), %r13          /* our return address */
    movq    %rsp, 0(%rdi)           /* from->stack_pointer */
    movq    8(%rdi), %rdx           /* its bytes: stop - sp, or none */
    subq    %rsp, %rdx
    xorl    %eax, %eax
    testq   %rdx, %rdx
    cmovs   %rax, %rdx
    movq    %rdx, 24(%rdi)          /* from->saved */
    movq    16(%rdi), %rdi
    movq    %rsp, %rsi
    call    memcpy@PLT              /* saved */
    movq    0(%r12), %rsp           /* onto the other side's stack */
    .cfi_undefined %rip
    movq    24(%r12), %rdx
    cmpq    $64, %rdx
    jb      1f
    leaq    64(%rsp), %rdi          /* all of its bytes but the frame */
    movq    16(%r12), %rsi
    addq    $64, %rsi
    subq    $64, %rdx
    call    memcpy@PLT
    movq    16(%r12), %rax          /* the frame, in its copy */
    jmp     2f
1:  movq    %rsp, %rdi              /* the frame on the stack */
    movq    16(%r12), %rsi
    call    memcpy@PLT
    movq    %rsp, %rax
2:  ldmxcsr (%rax)
    fldcw   4(%rax)
    movq    56(%rax), %rcx
    cmpq    %rcx, %r13              /* no flags change until jne */
    movq    8(%rax), %r15
    movq    16(%rax), %r14
    movq    24(%rax), %r13
    movq    32(%rax), %r12
    movq    40(%rax), %rbx
    movq    48(%rax), %rbp
    leaq    64(%rsp), %rsp
    jne     3f
    pushq   %rcx
    ret
3:  jmp     *%rcx
    .cfi_endproc
    .size   copy_floor_switch, .-copy_floor_switch

/* void copy_floor_start(copy_floor_side *from, copy_floor_side *to,
 *                       void (*run)(void *), void *argument) */
    .globl  copy_floor_start
    .type   copy_floor_start, @function
    .p2align 4
copy_floor_start:
    .cfi_startproc
    PUSH_FRAME
    movq    %rsp, 0(%rdi)           /* from: suspended here, nothing saved; */
    movq    %rsp, 8(%rdi)           /* its bytes are those below here */
    movq    $0, 24(%rdi)
    movq    %rsp, 8(%rsi)           /* to: starts right below */
    movq    %rcx, %rdi
    call    *%rdx                   /* never returns */
    ud2
    .cfi_endproc
    .size   copy_floor_start, .-copy_floor_start

#endif /* __x86_64__ */

    .section .note.GNU-stack, "", @progbits
