/*
 * switch.S -- picks the register switch for the CPU, ABI and object format
 * being compiled for. Each supported target has one file of its own.
 */
#if defined(__x86_64__) && defined(__ELF__) && !defined(__ILP32__)
#include "switch_x86_64_sysv_elf.S"
#elif defined(__aarch64__) && defined(__ELF__) && !defined(__ILP32__)
#include "switch_aarch64_aapcs64_elf.S"
#else
#error "greenlet engine: no stack switch for this CPU/ABI. Supported: x86-64 System V ELF, AArch64 AAPCS64 ELF. Add arch/switch_<cpu>_<abi>_<format>.S and select it in arch/switch.S."
#endif
