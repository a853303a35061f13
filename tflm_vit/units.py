"""Byte sizes with units, as budgets are written (`--budget 320KB`, `--sram 256KiB`).

KB and KiB are both 1024 bytes, MB and MiB 1024 x 1024, as microcontroller datasheets
count SRAM and flash (an STM32F746's "320 KB" of SRAM is 327,680 bytes); a bare number
or B is bytes. Case does not matter; a space before the unit is allowed."""

from __future__ import annotations

import argparse
import re

UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024 ** 2, "mb": 1024 ** 2,
         "mib": 1024 ** 2}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_bytes(text: str) -> int:
    """'320KB' -> 327680; ValueError naming the text for anything else (negative, zero,
    unknown unit, fractional bytes)."""
    m = _SIZE.match(str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in UNITS:
        raise ValueError(f"{text!r} is not a byte size (a number with an optional unit: "
                         "B, KB, KiB, MB, MiB; KB = KiB = 1024 bytes)")
    value = float(m.group(1)) * UNITS[unit]
    if value != int(value) or value <= 0:
        raise ValueError(f"{text!r} must be a positive whole number of bytes")
    return int(value)


def byte_size(text: str) -> int:
    """argparse type: parse_bytes with argparse's error."""
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
