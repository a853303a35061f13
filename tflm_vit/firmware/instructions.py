"""Counts the instructions of one Invoke() and of each op on an emulated Cortex-M.

QEMU (system mode, MPS2 boards) loads a small TCG plugin
(custom_ops/firmware/instruction_count_plugin.c)
that adds one to a counter per executed instruction and to a per-PC histogram, and finds
Invoke() and every op by the addresses of the model runner's tv_mark_* functions; the
histogram is mapped here onto functions with the ELF's symbol table. It counts what QEMU's
per-instruction trace (`-singlestep -d exec,nochain`) counts, about 100x faster. Counts are
exact and repeatable (QEMU is deterministic per instruction); they are instructions, not
cycles: a Cortex-M7 is dual-issue and stalls on memory, which an emulator does not model.

    python -m tflm_vit.firmware.instructions [--cpu cortex-m7] [--kernels cmsis_nn] MODEL.tflite

prints the total, the count per op and the functions that ran most.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import dataclasses
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from tflm_vit.firmware import qemu
from tflm_vit.firmware.paths import FIRMWARE, build_dir

PLUGIN_SRC = FIRMWARE / "instruction_count_plugin.c"

MARKERS = ("tv_mark_invoke_begin", "tv_mark_invoke_end", "tv_mark_op_begin", "tv_mark_op_end")


@dataclasses.dataclass(frozen=True)
class Counts:
    total: int                       # one Invoke(), profiler markers included
    ops: list[tuple[str, int]]       # (op tag, instructions) in execution order
    functions: dict[str, int]        # instructions per function inside Invoke()
    output: str                      # the runner's output

    def per_kind(self) -> dict[str, int]:
        """Instructions per op kind (TFLM's tag: builtin name or custom op name)."""
        kinds: dict[str, int] = collections.Counter()
        for tag, n in self.ops:
            kinds[tag] += n
        return dict(kinds)


def _plugin() -> pathlib.Path:
    plugin = build_dir() / "firmware" / "libinstruction_count.so"
    if not plugin.exists() or plugin.stat().st_mtime < PLUGIN_SRC.stat().st_mtime:
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            raise qemu.FirmwareError("no host C compiler (cc) to build the instruction counter")
        plugin.parent.mkdir(parents=True, exist_ok=True)
        tmp = plugin.with_suffix(f".{os.getpid()}.so")  # concurrent builds never half-load
        subprocess.run([cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o", str(tmp),
                        str(PLUGIN_SRC)], check=True)
        os.replace(tmp, plugin)
    return plugin


@dataclasses.dataclass(frozen=True)
class Symbols:
    starts: list[int]
    names: list[str]
    ends: list[int]
    by_name: dict[str, int]

    def function_of(self, pc: int) -> str:
        i = bisect.bisect_right(self.starts, pc) - 1
        if i >= 0 and pc < self.ends[i]:
            return self.names[i]
        return "?"


def symbols(elf) -> Symbols:
    """The ELF's functions (Thumb bit cleared), from arm-none-eabi-nm."""
    nm = qemu._need("arm-none-eabi-nm", "binutils-arm-none-eabi")
    out = subprocess.run([nm, "-C", "-S", "-n", "--defined-only", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) == 4 and parts[2] in "tTwW":
            addr, size = int(parts[0], 16) & ~1, int(parts[1], 16)
            if size:
                rows.append((addr, addr + size, parts[3]))
    rows.sort()
    by_name = {}
    for a, _, n in rows:
        by_name.setdefault(n.split("(")[0], a)
    return Symbols([r[0] for r in rows], [r[2] for r in rows], [r[1] for r in rows], by_name)


def _parse_tags(output: str) -> list[str]:
    for line in output.splitlines():
        if line.startswith("op_tags"):
            return line.split()[1:]
    raise qemu.FirmwareError("the model runner printed no op_tags line")


def count(build: qemu.Build, model: pathlib.Path, input_bin: pathlib.Path, arena: int,
          timeout: float = 1800) -> Counts:
    """Runs the model once on build's CPU under the trace and counts its instructions."""
    elf = build.model_runner
    syms = symbols(elf)
    missing = [m for m in MARKERS if m not in syms.by_name]
    if missing:
        raise qemu.FirmwareError(f"{elf.name} has no {', '.join(missing)}: rebuild it")
    lo, hi = syms.starts[0], syms.ends[-1]
    marks = ":".join(f"{syms.by_name[m]:x}" for m in MARKERS)
    with tempfile.TemporaryDirectory() as tmp:
        counts = pathlib.Path(tmp) / "counts.txt"
        result = qemu.run(elf, build.cpu, [model, input_bin, arena],
                          marker="TFLM_VIT_RUN_PASS", timeout=timeout,
                          qemu_args=["-plugin", f"{_plugin()},out={counts},marks={marks},"
                                     f"text={lo:x}:{hi:x}"])
        if not counts.exists():
            raise qemu.FirmwareError(f"{elf.name} never reached tv_mark_invoke_end")
        out = counts.read_text()
    total, ops, functions = 0, [], collections.Counter()
    for line in out.splitlines():
        key, *rest = line.split()
        if key == "total":
            total = int(rest[0])
        elif key == "ops":
            ops = [int(v) for v in rest]
        elif key == "pc":
            functions[syms.function_of(int(rest[0], 16))] += int(rest[1])
    tags = _parse_tags(result.output)
    if len(tags) != len(ops):
        raise qemu.FirmwareError(f"{len(tags)} ops ran but the trace has {len(ops)} op segments")
    return Counts(total, list(zip(tags, ops)), dict(functions), result.output)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", choices=sorted(qemu.MACHINES), default="cortex-m7")
    p.add_argument("--kernels", choices=qemu.KERNELS, default="cmsis_nn")
    p.add_argument("--arena", type=int, default=1 << 20)
    p.add_argument("--top", type=int, default=15, help="functions to list")
    p.add_argument("model", type=pathlib.Path)
    a = p.parse_args(argv)
    try:
        import numpy as np
        from tflm_vit.tflite_model import parse_model, read_model_bytes
        info = parse_model(read_model_bytes(a.model), str(a.model))
        shape = info.tensors[info.inputs[0]].shape
        build = qemu.build(a.cpu, a.kernels)
        with tempfile.TemporaryDirectory() as tmp:
            inp = pathlib.Path(tmp) / "input.bin"
            np.random.default_rng(0).integers(-128, 128, shape, dtype=np.int8).tofile(inp)
            c = count(build, a.model.resolve(), inp, a.arena)
    except (qemu.FirmwareError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{a.model.name} on {a.cpu} ({a.kernels}): {c.total:,} instructions")
    for i, (tag, n) in enumerate(c.ops):
        print(f"  op {i:3d} {tag:24s} {n:12,d}")
    print("functions:")
    for name, n in sorted(c.functions.items(), key=lambda kv: -kv[1])[:a.top]:
        print(f"  {n:12,d} {100 * n / c.total:5.1f} %  {name[:90]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
