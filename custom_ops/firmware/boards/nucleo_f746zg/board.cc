// Board layer for the NUCLEO-F746ZG (STM32F746ZG, Cortex-M7, 320 KB SRAM): TFLM's
// output (MicroPrintf -> DebugLog) goes to USART3 on PD8/PD9, the ST-LINK's virtual COM
// port, at 115200 baud 8N1.
//
// Build the app with TFLM's cortex_m_generic target (its DebugLog calls the callback
// registered here) and your STM32 project's start-up code (vector table, SystemInit,
// clock set-up: STM32CubeIDE generates them). Define TFLM_VIT_APB1_HZ to your APB1 clock
// if the project changes it from the reset value (HSI, 16 MHz); CubeMX's 216 MHz
// default configuration has APB1 at 54 MHz.
#include <stdint.h>

#include "board.h"
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"

#ifndef TFLM_VIT_APB1_HZ
#define TFLM_VIT_APB1_HZ 16000000u
#endif

namespace {

// STM32F74x register addresses (RM0385).
volatile uint32_t& Reg(uint32_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }
constexpr uint32_t kRccAhb1Enr = 0x40023830u;   // bit 3: GPIOD clock
constexpr uint32_t kRccApb1Enr = 0x40023840u;   // bit 18: USART3 clock
constexpr uint32_t kGpioDModer = 0x40020C00u;   // 2 bits per pin; 0b10 = alternate function
constexpr uint32_t kGpioDAfrh = 0x40020C24u;    // 4 bits per pin 8..15; AF7 = USART3
constexpr uint32_t kUsart3Cr1 = 0x40004800u;    // UE bit 0, TE bit 3
constexpr uint32_t kUsart3Brr = 0x4000480Cu;
constexpr uint32_t kUsart3Isr = 0x4000481Cu;    // TXE bit 7
constexpr uint32_t kUsart3Tdr = 0x40004828u;
constexpr uint32_t kBaud = 115200u;

void PutChar(char c) {
  while ((Reg(kUsart3Isr) & (1u << 7)) == 0) {
  }
  Reg(kUsart3Tdr) = static_cast<uint8_t>(c);
}

void Write(const char* s) {
  for (; *s != '\0'; ++s) {
    if (*s == '\n') PutChar('\r');
    PutChar(*s);
  }
}

}  // namespace

void BoardInit() {
  Reg(kRccAhb1Enr) |= 1u << 3;
  Reg(kRccApb1Enr) |= 1u << 18;
  Reg(kGpioDModer) = (Reg(kGpioDModer) & ~(0xFu << 16)) | (0xAu << 16);  // PD8, PD9: AF
  Reg(kGpioDAfrh) = (Reg(kGpioDAfrh) & ~0xFFu) | 0x77u;                  // AF7
  Reg(kUsart3Brr) = (TFLM_VIT_APB1_HZ + kBaud / 2) / kBaud;
  Reg(kUsart3Cr1) = (1u << 3) | 1u;
  RegisterDebugLogCallback(Write);
}

void BoardExit(int code) {
  Write(code == 0 ? "tflm-vit: done\n" : "tflm-vit: failed\n");
  __asm volatile("bkpt #0");  // stops here under a debugger
  while (true) {
  }
}
