/*
 * switch_aarch64_aapcs64_elf.S -- the register switch for AArch64, AAPCS64,
 * ELF. Included by arch/switch.S.
 *
 * Implements (see src/engine.h):
 *
 *   int gl__stack_switch(gl__thread *thread);
 *   noreturn: gl__greenlet_trampoline(gl__thread *thread)
 *
 * calling the C steps gl__switch_save, gl__switch_refill, gl__switch_arrive
 * and gl__greenlet_begin.
 *
 * ABI: Procedure Call Standard for the Arm 64-bit Architecture (AAPCS64),
 * 6.1.1 and 6.1.2. Callee-saved: x19-x28, x29 (frame pointer), the low 64
 * bits of v8-v15 (d8-d15), and the FPCR modes; x30 (link register) holds
 * the address to return to. sp stays 16-byte aligned throughout.
 *
 * The switch frame, at a suspended greenlet's stack_pointer:
 *
 *   offset  content
 *       0   x29, x30
 *      16   x19, x20
 *      32   x21, x22
 *      48   x23, x24
 *      64   x25, x26
 *      80   x27, x28
 *      96   d8,  d9
 *     112   d10, d11
 *     128   d12, d13
 *     144   d14, d15
 *     160   FPCR (8 bytes), then 8 bytes of padding
 *   CFA = stack_pointer + 176
 *
 * The CFI describes this frame at every instruction where it is in place,
 * so unwinders walk from a suspended greenlet's switch frame into its
 * callers; while a resumed greenlet's bytes are being copied back, it says
 * instead that the return address is undefined. The trampoline, the
 * root of every greenlet's stack, leaves x30 undefined: backtraces end
 * there cleanly.
 *
 * BTI: entry points begin with "bti c" (written as hint #34, a no-op on
 * CPUs without BTI) and the object is marked BTI-compatible. Return
 * addresses are not signed (no PAC): it would add nothing here, since the
 * saved x30 is protected exactly as well as the rest of the switch frame.
 */

    .text

/* int gl__stack_switch(gl__thread *thread) */
    .globl  gl__stack_switch
    .hidden gl__stack_switch
    .type   gl__stack_switch, %function
    .p2align 4
gl__stack_switch:
    .cfi_startproc
    hint    #34                     /* bti c: a valid indirect-call target */
    stp     x29, x30, [sp, #-176]!  /* allocate the frame; save fp and lr */
    .cfi_def_cfa_offset 176
    .cfi_offset x29, -176
    .cfi_offset x30, -168
    stp     x19, x20, [sp, #16]     /* callee-saved integer registers */
    .cfi_offset x19, -160
    .cfi_offset x20, -152
    stp     x21, x22, [sp, #32]
    .cfi_offset x21, -144
    .cfi_offset x22, -136
    stp     x23, x24, [sp, #48]
    .cfi_offset x23, -128
    .cfi_offset x24, -120
    stp     x25, x26, [sp, #64]
    .cfi_offset x25, -112
    .cfi_offset x26, -104
    stp     x27, x28, [sp, #80]
    .cfi_offset x27, -96
    .cfi_offset x28, -88
    stp     d8, d9, [sp, #96]       /* callee-saved FP registers */
    .cfi_offset d8, -80
    .cfi_offset d9, -72
    stp     d10, d11, [sp, #112]
    .cfi_offset d10, -64
    .cfi_offset d11, -56
    stp     d12, d13, [sp, #128]
    .cfi_offset d12, -48
    .cfi_offset d13, -40
    stp     d14, d15, [sp, #144]
    .cfi_offset d14, -32
    .cfi_offset d15, -24
    mrs     x9, fpcr                /* FP control: rounding, flush-to-zero */
    str     x9, [sp, #160]

    mov     x19, x0                 /* keep the thread record across calls */
    mov     x1, sp                  /* the origin's stack pointer */
    bl      gl__switch_save         /* -> x0: target sp, x1: action */
.Lsuspended:                        /* where a suspended frame stands */
    cbnz    x1, .Lnot_a_move        /* start a greenlet, or an error */

    mov     sp, x0                  /* onto the target's stack */
    .cfi_remember_state
    .cfi_undefined x30              /* its frame is not back yet: unwinders */
    mov     x0, x19                 /* that interrupt the copy stop here */
    bl      gl__switch_refill       /* copy the target's bytes back */
    mov     x9, sp                  /* -> x0: where its switch frame is; */
    cmp     x0, x9                  /* if still in its heap copy, it is */
    b.eq    1f                      /* copied into place here */
    .irp    offset, 0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160
    ldp     x10, x11, [x0, #\offset]
    stp     x10, x11, [sp, #\offset]
    .endr
1:  .cfi_restore_state              /* same frame layout: the CFI holds */
    mov     x0, x19
    bl      gl__switch_arrive       /* hooks, and the target's reply */
    mov     w0, #0                  /* the target's gl__stack_switch -> 0 */

.Lreturn:
    .cfi_remember_state             /* the full frame, for .Lnot_a_move */
    ldr     x9, [sp, #160]          /* the resumed greenlet's FPCR, written */
    mrs     x10, fpcr               /* only if it differs: writing FPCR may */
    cmp     x9, x10                 /* synchronise the pipeline */
    b.eq    1f
    msr     fpcr, x9
1:  ldp     d8, d9, [sp, #96]       /* and its callee-saved registers */
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     x29, x30, [sp], #176    /* free the frame */
    .cfi_def_cfa_offset 0
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    .cfi_restore x29
    .cfi_restore x30
    ret                             /* into the resumed greenlet */

.Lnot_a_move:
    .cfi_restore_state              /* the full frame is still in place */
    tbnz    x1, #63, .Lfailed       /* negative action: an error code */
    mov     x0, x19                 /* start the target right below us */
    bl      gl__greenlet_trampoline /* never returns */
    brk     #1

.Lfailed:
    mov     w0, w1                  /* nothing moved: return the error */
    b       .Lreturn
    .cfi_endproc
    .size   gl__stack_switch, .-gl__stack_switch

/* The root frame of every greenlet. */
    .globl  gl__greenlet_trampoline
    .hidden gl__greenlet_trampoline
    .type   gl__greenlet_trampoline, %function
    .p2align 4
gl__greenlet_trampoline:
    .cfi_startproc
    .cfi_undefined x30              /* the outermost frame of this greenlet */
    hint    #34                     /* bti c */
    mov     x29, #0                 /* frame-pointer chains end here too */
    bl      gl__greenlet_begin      /* runs the greenlet; never returns */
    brk     #1
    .cfi_endproc
    .size   gl__greenlet_trampoline, .-gl__greenlet_trampoline

/* const void *const gl__switch_suspended_ip: an instruction address whose
 * CFI describes the switch frame, for unwinders of suspended greenlets. */
    .section .data.rel.ro, "aw"
    .p2align 3
    .globl  gl__switch_suspended_ip
    .hidden gl__switch_suspended_ip
    .type   gl__switch_suspended_ip, %object
    .size   gl__switch_suspended_ip, 8
gl__switch_suspended_ip:
    .quad   .Lsuspended

/* BTI-compatible (see the top of the file). */
    .section .note.gnu.property, "a"
    .p2align 3
    .long   4                       /* name size: "GNU\0" */
    .long   16                      /* descriptor size */
    .long   5                       /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000000              /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .long   4                       /* data size */
    .long   1                       /* GNU_PROPERTY_AARCH64_FEATURE_1_BTI */
    .long   0                       /* padding to 8 bytes */

    .section .note.GNU-stack, "", %progbits
