// Reset and fault handling for the QEMU MPS2 images: a 16-entry Cortex-M vector table whose
// reset handler enters newlib's crt0 (`_start`: clears .bss, runs constructors, calls main,
// passes main's result to exit, which semihosting turns into QEMU's exit status).
// A fault prints its name through semihosting and ends QEMU with a failure status, so a crash
// in a test fails the run instead of hanging it until the timeout.
#include <cstdint>

extern "C" {
void _start();
// Declared as a function so that the vector table holds it without a cast; it is the address
// the linker script puts at the top of RAM.
void __stack_top();
[[noreturn]] void edgekit_reset_handler();
}

namespace {

// ARM semihosting: operation in r0, argument in r1, `bkpt 0xAB` on M-profile.
std::uintptr_t semihost(std::uintptr_t op, const void* arg) {
  register std::uintptr_t r0 asm("r0") = op;
  register const void* r1 asm("r1") = arg;
  asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

[[noreturn]] void die(const char* what) {
  constexpr std::uintptr_t kSysWrite0 = 0x04;
  constexpr std::uintptr_t kSysExit = 0x18;
  // ADP_Stopped_RunTimeErrorUnknown: QEMU exits with status 1.
  constexpr std::uintptr_t kRunTimeError = 0x20023;
  semihost(kSysWrite0, "edgekit: fault: ");
  semihost(kSysWrite0, what);
  semihost(kSysWrite0, "\n");
  semihost(kSysExit, reinterpret_cast<const void*>(kRunTimeError));
  for (;;) {
  }
}

void nmi() { die("NMI"); }
void hard_fault() { die("HardFault"); }
void mem_manage() { die("MemManage"); }
void bus_fault() { die("BusFault"); }
void usage_fault() { die("UsageFault"); }
void unexpected() { die("unexpected exception"); }

using Handler = void (*)();

}  // namespace

extern "C" [[noreturn]] void edgekit_reset_handler() {
  _start();
  for (;;) {
  }
}

// Index 0 is the initial stack pointer, then the system exceptions (ARMv7-M B1.5.2).
__attribute__((section(".vectors"), used)) const Handler edgekit_vectors[16] = {
    __stack_top,
    edgekit_reset_handler,
    nmi,
    hard_fault,
    mem_manage,
    bus_fault,
    usage_fault,
    unexpected,
    unexpected,
    unexpected,
    unexpected,
    unexpected,  // SVCall
    unexpected,  // Debug monitor
    unexpected,
    unexpected,  // PendSV
    unexpected,  // SysTick
};
