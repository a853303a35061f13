"""What a subnet costs on the microcontroller, and the budgets a search holds it to.

Every figure is measured on the deployed model, never estimated from the config:
SRAM is the arena the memory model predicts for the converted and planned model on the
chosen TFLM target (exact to the byte, see tflm_vit/memory), flash the bytes of that
serialized model, and latency the instruction count the speed benchmark's fitted model
predicts for it on a Cortex-M CPU (tflm_vit/latency.py), with MACs beside it.
"""

from __future__ import annotations

import dataclasses

from tflm_vit.errors import BudgetError
from tflm_vit.units import parse_bytes

FIGURES = ("sram", "flash", "latency")  # the budgetable figures, in this order
UNITS = {"sram": "bytes", "flash": "bytes", "latency": "instructions"}


@dataclasses.dataclass(frozen=True)
class Cost:
    sram: int  # arena to give TFLM on the target, bytes
    flash: int  # serialized converted + planned model, bytes
    latency: int  # predicted instructions of one inference on the CPU
    macs: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Budgets:
    sram: int | None = None
    flash: int | None = None
    latency: int | None = None
    target: str = "cortex-m"  # the memory model's TFLM target for sram
    cpu: str = "cortex-m7"  # the latency model's CPU

    def __post_init__(self):
        for name in FIGURES:
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise BudgetError(f"--{name} budget must be a positive whole number of "
                                  f"{UNITS[name]}, got {v!r}")

    @classmethod
    def parse(cls, sram: str | None = None, flash: str | None = None,
              latency: str | None = None, **kw) -> "Budgets":
        """From the CLI's text: byte sizes with units (320KB, 1MB; KB = KiB = 1024) and
        an instruction count (plain, or with k/M: 20M = 20,000,000)."""
        def size(name, text):
            if text is None:
                return None
            try:
                return parse_bytes(text)
            except ValueError as e:
                raise BudgetError(f"--{name}: {e}") from None
        return cls(size("sram", sram), size("flash", flash), _count(latency), **kw)

    @property
    def given(self) -> dict:
        return {n: getattr(self, n) for n in FIGURES if getattr(self, n) is not None}

    def excess(self, cost: Cost) -> dict:
        """Each budget's overrun as a fraction of the budget (<= 0 where it fits)."""
        return {n: (getattr(cost, n) - b) / b for n, b in self.given.items()}

    def fits(self, cost: Cost) -> bool:
        return all(e <= 0 for e in self.excess(cost).values())

    def describe(self) -> str:
        return ", ".join(f"{n} <= {v:,} {UNITS[n]}" for n, v in self.given.items()) or \
            "no budget"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    t = str(text).strip()
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(t[-1:].lower(), 1)
    number = t[:-1] if scale != 1 else t
    try:
        value = float(number) * scale
    except ValueError:
        value = -1.0
    if value <= 0 or value != int(value):
        raise BudgetError(f"--latency {text!r} is not an instruction count (a positive whole "
                          "number, optionally with k, M or G: 20M = 20,000,000)")
    return int(value)


def check_reachable(budgets: Budgets, floor: Cost, what: str) -> None:
    """BudgetError when even `floor` (the cheapest figures in the space, `what` names it)
    breaks a budget: nothing in the space can fit, say by how much."""
    for name, budget in budgets.given.items():
        need = getattr(floor, name)
        if need > budget:
            raise BudgetError(f"--{name} {budget:,} {UNITS[name]} cannot be met: {what} "
                              f"needs {need:,} {UNITS[name]}, the least in the search space")
