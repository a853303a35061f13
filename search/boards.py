"""Boards: a search's budgets from the microcontroller a model ships on.

A board gives three budgets:
- SRAM: the arena, i.e. the board's SRAM less APP_RESERVE for the application's stack,
  heap and data (TFLM's interpreter and resolver objects, the board support code);
- flash: the model's bytes, i.e. the board's flash less what our example firmware
  (TFLM + CMSIS-NN + our ops + the example app, custom_ops/firmware/example) takes
  without its model, as measured by the Cortex-M build (FIRMWARE_FLASH, checked by
  tests/test_firmware.py against the build);
- latency: a time in milliseconds at the board's clock, turned into the instruction
  budget the latency model (tflm_vit/latency.py) predicts against, at one instruction per
  cycle (the M7 issues up to two per cycle, so this errs slow; on the M4 flash wait states
  are hidden by the ART accelerator for straight-line code).

MCUFormer's three boards (STM32F427, STM32F746, STM32H743) and two smaller Cortex-M4
parts are built in; `--sram`, `--flash` and `--latency` override a board's figures.
"""

from __future__ import annotations

import dataclasses

from tflm_vit.errors import BudgetError
from tflm_vit.search.budgets import Budgets

KB = 1024
APP_RESERVE = 16 * KB  # SRAM left to the application beside TFLM's arena
LATENCY_MS = 150.0  # the default latency budget: a few classifications a second

# Flash of the example firmware without its model (text + data of the ELF less the
# model array), per CPU, built with CMSIS-NN (-O2, Debian's arm-none-eabi-gcc 12):
# custom_ops/firmware/example/main.cc with R0 planned, as tests/test_firmware.py measures.
# 211,580 / 211,636 bytes with R0's 111,280-byte model. Reading our ops' options as
# FlexBuffers maps (custom_ops/tflm/options_reader.cc: the verifier, the map lookup, the
# keys) added 4,384 bytes on the M7 to the 95,916 of the fixed-layout reader before it.
FIRMWARE_FLASH = {"cortex-m7": 100_292, "cortex-m4": 100_356}


@dataclasses.dataclass(frozen=True)
class Board:
    name: str
    part: str  # what it is, for reports
    cpu: str  # the latency model's and the firmware's CPU
    clock_mhz: int
    sram: int  # bytes on the part
    flash: int
    latency_ms: float  # the default latency budget of one inference

    @property
    def arena_budget(self) -> int:
        return self.sram - APP_RESERVE

    @property
    def flash_budget(self) -> int:
        return self.flash - FIRMWARE_FLASH[self.cpu]

    @property
    def instruction_budget(self) -> int:
        return int(self.latency_ms * self.clock_mhz * 1000)

    def budgets(self, sram: int | None = None, flash: int | None = None,
                latency: int | None = None, kernels: str = "cmsis_nn") -> Budgets:
        """The board's budgets, each overridden where given; the arena is the Cortex-M
        build's (the memory model's cortex-m target with `kernels`)."""
        target = "cortex-m-cmsis-nn" if kernels == "cmsis_nn" else "cortex-m"
        return Budgets(sram or self.arena_budget, flash or self.flash_budget,
                       latency or self.instruction_budget, target=target, cpu=self.cpu)

    def describe(self) -> str:
        return (f"{self.part} ({self.cpu} at {self.clock_mhz} MHz, {self.sram // KB} KB SRAM, "
                f"{self.flash // KB} KB flash)")

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "arena_budget": self.arena_budget,
                "flash_budget": self.flash_budget,
                "instruction_budget": self.instruction_budget}


BOARDS = {b.name: b for b in (
    Board("stm32f401", "STM32F401RC", "cortex-m4", 84, 64 * KB, 256 * KB, LATENCY_MS),
    Board("stm32f411", "STM32F411RE", "cortex-m4", 100, 128 * KB, 512 * KB, LATENCY_MS),
    Board("stm32f427", "STM32F427 (MCUFormer)", "cortex-m4", 180, 256 * KB, 1024 * KB, LATENCY_MS),
    Board("stm32f746", "STM32F746 (MCUFormer)", "cortex-m7", 216, 320 * KB, 1024 * KB, LATENCY_MS),
    Board("stm32h743", "STM32H743 (MCUFormer)", "cortex-m7", 480, 512 * KB, 2048 * KB, LATENCY_MS),
)}


def board(name: str) -> Board:
    """The board called `name`; BudgetError listing the known ones otherwise."""
    key = str(name).strip().lower().replace("-", "")
    if key not in BOARDS:
        raise BudgetError(f"--board {name!r} is not a known board; known: "
                          + ", ".join(f"{b.name} ({b.describe()})" for b in BOARDS.values()))
    return BOARDS[key]
