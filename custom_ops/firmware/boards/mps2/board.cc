// Board layer for QEMU's MPS2 machines (mps2-an500 = Cortex-M7, mps2-an386 =
// Cortex-M4), run with semihosting: newlib's rdimon start-up and stdio reach the host,
// and exit() carries the status back to qemu-system-arm.
//
// QEMU takes the initial stack pointer and the reset vector from address 0, so this
// file places a vector table there: section .tv_vectors, linked with
// -Wl,--section-start=.tv_vectors=0x0 and kept by -Wl,--undefined=tv_vectors (else
// --gc-sections drops it and the board never boots). Any fault ends the run with a
// distinct exit code, so a crash is never mistaken for a pass.
#include <stdlib.h>
#include <unistd.h>

#include "board.h"

extern "C" void _start();  // newlib rdimon's C start-up: sets up stdio, calls main, exit()

namespace {

// Exit codes the QEMU runner maps back to names (tflm_vit/firmware/qemu.py).
constexpr int kExitFault = 90;

[[noreturn]] void Fault() { _exit(kExitFault); }
[[noreturn]] void NMI() { _exit(kExitFault + 1); }
[[noreturn]] void HardFault() { _exit(kExitFault + 2); }
[[noreturn]] void MemManage() { _exit(kExitFault + 3); }
[[noreturn]] void BusFault() { _exit(kExitFault + 4); }
[[noreturn]] void UsageFault() { _exit(kExitFault + 5); }

}  // namespace

// Top of SSRAM1 (4 MB at 0x0): code, data, heap and stack all live there.
extern "C" __attribute__((section(".tv_vectors"), used)) const void* const tv_vectors[16] = {
    reinterpret_cast<const void*>(0x00400000), reinterpret_cast<const void*>(&_start),
    reinterpret_cast<const void*>(&NMI),       reinterpret_cast<const void*>(&HardFault),
    reinterpret_cast<const void*>(&MemManage), reinterpret_cast<const void*>(&BusFault),
    reinterpret_cast<const void*>(&UsageFault), nullptr, nullptr, nullptr, nullptr,
    reinterpret_cast<const void*>(&Fault),     reinterpret_cast<const void*>(&Fault), nullptr,
    reinterpret_cast<const void*>(&Fault),     reinterpret_cast<const void*>(&Fault)};

void BoardInit() {}

void BoardExit(int code) { exit(code); }
