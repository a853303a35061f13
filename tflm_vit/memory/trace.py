"""Every persistent allocation the wheel's TFLM makes for a model, read off with gdb.

How the tail's figures in targets.py are measured (docs/memory_model.md): a breakpoint
on `SingleArenaBufferAllocator::AllocatePersistentBuffer(size, alignment)` in the
wheel's `_runtime.so` logs each allocation with the function that asked for it, while a
child Python loads the model. `compare` sets that sequence beside the memory model's
(tail.tail_allocations) so a new op's sizes can be read off, and a wrong one is found
at the allocation where it goes wrong. Needs gdb (Debian: gdb); x86-64 only (the
arguments are read from rsi and rdx, the System V calling convention).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile

from tflm_vit.errors import TflmVitError

_GDB_SCRIPT = r'''
import gdb
gdb.execute("set breakpoint pending on")
gdb.execute("set pagination off")
WRAPPERS = ("AllocatePersistentBuffer", "AllocatePersistentTfLiteTensorInternal",
            "MicroContextAllocatePersistentBuffer")
class Trace(gdb.Breakpoint):
    def stop(self):
        size = int(gdb.parse_and_eval("$rsi"))
        align = int(gdb.parse_and_eval("$rdx"))
        frame, caller = gdb.newest_frame().older(), "?"
        while frame is not None:
            name = frame.name() or ""
            if name and not any(w in name for w in WRAPPERS):
                caller = name
                break
            frame = frame.older()
        print("TFLM_VIT_ALLOC %d %d %s" % (size, align, caller), flush=True)
        return False
Trace("tflite::micro::SingleArenaBufferAllocator::AllocatePersistentBuffer"
      "(unsigned long, unsigned long)")
gdb.execute("run")
'''

_CHILD = r'''
import sys
from tflite_micro.python.tflite_micro import runtime as tflm
data = open(sys.argv[1], "rb").read()
tflm.Interpreter.from_bytes(data, arena_size=int(sys.argv[2]),
                            intrepreter_config=tflm.InterpreterConfig.kAllocationRecording)
print("TFLM_VIT_LOADED", flush=True)
'''


@dataclasses.dataclass(frozen=True)
class Traced:
    size: int
    align: int
    caller: str  # the function that asked, without its argument list

    def __str__(self) -> str:
        return f"{self.size} (align {self.align}) from {self.caller}"


def trace(model: bytes, arena_size: int = 8 << 20, timeout: float = 300) -> list[Traced]:
    """The wheel's persistent allocations for `model`, in order (allocator objects first).
    TflmVitError when gdb is missing or the model does not load."""
    gdb = shutil.which("gdb")
    if gdb is None:
        raise TflmVitError("tracing TFLM's allocations needs gdb (apt-get install gdb)")
    with tempfile.TemporaryDirectory() as d:
        paths = {name: os.path.join(d, name) for name in ("trace.py", "child.py", "m.tflite")}
        for name, text in (("trace.py", _GDB_SCRIPT), ("child.py", _CHILD)):
            with open(paths[name], "w") as f:
                f.write(text)
        with open(paths["m.tflite"], "wb") as f:
            f.write(model)
        proc = subprocess.run([gdb, "-q", "-batch", "-x", paths["trace.py"], "--args",
                               sys.executable, paths["child.py"], paths["m.tflite"],
                               str(arena_size)], capture_output=True, text=True,
                              timeout=timeout)
    if "TFLM_VIT_LOADED" not in proc.stdout:
        raise TflmVitError("the model did not load in the wheel under gdb: "
                           + (proc.stdout + proc.stderr).strip()[-500:])
    out = []
    for line in proc.stdout.splitlines():
        if line.startswith("TFLM_VIT_ALLOC "):
            _, size, align, caller = line.split(" ", 3)
            out.append(Traced(int(size), int(align), _short(caller)))
    return out


def _short(name: str) -> str:
    """`tflite::micro::ParseConv2D(tflite::Operator const*, ...)` -> `ParseConv2D`."""
    depth, cut = 0, len(name)
    for i, ch in enumerate(name):  # the argument list: the last top-level parenthesis
        if ch == "(":
            if depth == 0:
                cut = i
            depth += 1
        elif ch == ")":
            depth -= 1
    base = name[:cut]
    base = re.sub(r"\(anonymous namespace\)::", "", base)
    return base.split("::")[-1] if "::" in base else base


def compare(model: bytes, target="wheel") -> list[str]:
    """Lines where the memory model's allocation sequence and the wheel's part ways
    (empty when they agree allocation by allocation)."""
    from tflm_vit.memory.tail import tail_allocations
    from tflm_vit.memory.targets import get_target
    from tflm_vit.tflite_model import parse_model
    ours = tail_allocations(parse_model(model), get_target(target))
    theirs = trace(model)
    lines = []
    for i in range(max(len(ours), len(theirs))):
        a = ours[i] if i < len(ours) else None
        b = theirs[i] if i < len(theirs) else None
        if a is None or b is None or (a.size, a.align) != (b.size, b.align):
            mine = f"{a.size} (align {a.align}) {a.what} op {a.op}" if a else "nothing"
            lines.append(f"#{i}: memory model {mine}; TFLM {b if b else 'nothing'}")
    return lines


_GDB_FIRMWARE = r'''
import gdb
gdb.execute("set pagination off")
gdb.execute("set confirm off")
class Trace(gdb.Breakpoint):
    def stop(self):
        size = int(gdb.parse_and_eval("$r1"))
        align = int(gdb.parse_and_eval("$r2"))
        frame, caller = gdb.newest_frame().older(), "?"
        while frame is not None:
            name = frame.name() or ""
            if name and "AllocatePersistent" not in name:
                caller = name
                break
            frame = frame.older()
        print("TFLM_VIT_ALLOC %d %d %s" % (size, align, caller), flush=True)
        return False
# At the entry, before the prologue moves the arguments ("*" = the function's address).
Trace("*'tflite::SingleArenaBufferAllocator::AllocatePersistentBuffer"
      "(unsigned int, unsigned int)'")
gdb.execute("continue")
'''


def trace_firmware(model: bytes, elf, machine: str, cpu: str, timeout: float = 600,
                   arena_size: int = 1 << 20) -> list[Traced]:
    """The same on a Cortex-M: the model runner ELF (custom_ops/firmware/runner) on
    qemu-system-arm (`machine`, e.g. mps2-an500 for the M7), halted at reset for
    gdb-multiarch, which sets the breakpoint (arguments in r1, r2: the AAPCS)."""
    import socket
    from tflm_vit.tflite_model import parse_model
    for tool, package in (("gdb-multiarch", "gdb-multiarch"), ("qemu-system-arm",
                                                                 "qemu-system-arm")):
        if shutil.which(tool) is None:
            raise TflmVitError(f"tracing TFLM's allocations on a Cortex-M needs {tool} "
                               f"(apt-get install {package})")
    info = parse_model(model)
    with socket.socket() as s:  # a free port for qemu's gdb stub
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as d:
        model_path, input_path = os.path.join(d, "m.tflite"), os.path.join(d, "in.bin")
        script = os.path.join(d, "trace.py")
        with open(model_path, "wb") as f:
            f.write(model)
        with open(input_path, "wb") as f:
            f.write(bytes(info.tensors[info.inputs[0]].nbytes))
        with open(script, "w") as f:
            f.write(_GDB_FIRMWARE)
        semihosting = ",".join(["enable=on", "target=native", "arg=runner",
                                f"arg={model_path}", f"arg={input_path}", f"arg={arena_size}"])
        qemu = subprocess.Popen(
            ["qemu-system-arm", "-M", machine, "-cpu", cpu, "-nographic", "-monitor", "none",
             "-serial", "none", "-semihosting-config", semihosting, "-gdb",
             f"tcp:127.0.0.1:{port}", "-S", "-kernel", str(elf)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL)
        try:
            proc = subprocess.run(
                ["gdb-multiarch", "-q", "-batch", "-ex", f"file {elf}", "-ex",
                 f"target remote 127.0.0.1:{port}", "-x", script],
                capture_output=True, text=True, timeout=timeout)
            runner_out, _ = qemu.communicate(timeout=60)
        finally:
            if qemu.poll() is None:
                qemu.kill()
                qemu.wait()
    if "TFLM_VIT_RUN_PASS" not in runner_out:
        raise TflmVitError("the model did not run on the emulated Cortex-M under gdb: "
                           + (runner_out + proc.stderr).strip()[-500:])
    return [Traced(int(size), int(align), _short(caller))
            for _, size, align, caller in (line.split(" ", 3) for line in proc.stdout.splitlines()
                                           if line.startswith("TFLM_VIT_ALLOC "))]
