// The board layer an app links against: one implementation per board
// (boards/mps2 for QEMU's MPS2 machines, boards/nucleo_f746zg for the NUCLEO-F746ZG).
// TFLM's own DebugLog (MicroPrintf) is the app's output; the board decides where it
// goes (semihosting on mps2, the ST-LINK virtual COM port on the NUCLEO).
#ifndef TFLM_VIT_FIRMWARE_BOARDS_BOARD_H_
#define TFLM_VIT_FIRMWARE_BOARDS_BOARD_H_

// Clocks, FPU, console: whatever the board needs before main's first MicroPrintf.
void BoardInit();
// Ends the run with `code` (0 = success): a semihosting exit on mps2, a breakpoint
// and a halt loop on hardware.
[[noreturn]] void BoardExit(int code);

#endif  // TFLM_VIT_FIRMWARE_BOARDS_BOARD_H_
