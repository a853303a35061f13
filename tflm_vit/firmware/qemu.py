"""Builds tflm-vit's firmware binaries with TFLM's make build and runs them on an
emulated Cortex-M (qemu-system-arm, MPS2 boards, semihosting).

    python -m tflm_vit.firmware.qemu build --cpu cortex-m7 --kernels cmsis_nn
    python -m tflm_vit.firmware.qemu run --cpu cortex-m7 ELF [ARGS...]

A run passes only when QEMU exits 0 *and* the program printed its pass marker: a
fault (the mps2 board layer exits 90-95), a hang (timeout), a crash or a missing marker
is a failure, with the tail of the output in the message. (TFLM's own
test_with_qemu.sh greps the log only and can report a crashed test as passing.)

The TFLM tree comes from custom_ops/firmware/tflm_tree.sh (TFLM_ROOT, else the shared
tarball unpacked under build/tflm; tflm_vit/firmware/paths.py). Builds land in that
tree's gen/ folder, one per (CPU, kernels)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

from tflm_vit.firmware.paths import FIRMWARE, SOURCES, build_dir, third_party_dir

# The emulated boards: CPU -> QEMU machine.
MACHINES = {"cortex-m7": "mps2-an500", "cortex-m4": "mps2-an386"}
KERNELS = ("reference", "cmsis_nn")
# Exit codes of boards/mps2/board.cc's fault handlers.
FAULTS = {90: "fault", 91: "NMI", 92: "HardFault", 93: "MemManage fault", 94: "BusFault",
          95: "UsageFault"}


class FirmwareError(RuntimeError):
    """A build or an emulated run failed; the message says which and why."""


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise FirmwareError(f"{tool} not found: install Debian's {package} "
                            "(make firmware-deps does)")
    return path


def tflm_tree() -> pathlib.Path:
    """The TFLM tree (tflm_tree.sh); FirmwareError with its one-line reason if none."""
    env = {**os.environ, "TFLM_VIT_THIRD_PARTY": str(third_party_dir())}
    proc = subprocess.run(["bash", str(FIRMWARE / "tflm_tree.sh"), str(build_dir() / "tflm")],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise FirmwareError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                            else "tflm_tree.sh failed")
    return pathlib.Path(proc.stdout.strip().splitlines()[-1])


@dataclasses.dataclass(frozen=True)
class Build:
    cpu: str
    kernels: str
    bindir: pathlib.Path

    @property
    def vector_tests(self) -> pathlib.Path:
        return self.bindir / "tflm_vit_vector_tests"

    @property
    def model_runner(self) -> pathlib.Path:
        return self.bindir / "tflm_vit_model_runner"

    @property
    def example(self) -> pathlib.Path:
        return self.bindir / "tflm_vit_example"


def make_args(tree: pathlib.Path, cpu: str, kernels: str, **variables) -> list[str]:
    """The TFLM make command line for our firmware on QEMU (EXTERNAL_DIR=custom_ops)."""
    if cpu not in MACHINES:
        raise FirmwareError(f"unknown cpu {cpu!r}; choose one of {', '.join(MACHINES)}")
    if kernels not in KERNELS:
        raise FirmwareError(f"unknown kernels {kernels!r}; choose one of {', '.join(KERNELS)}")
    args = ["make", "-C", str(tree), "-f", "tensorflow/lite/micro/tools/make/Makefile",
            f"-j{os.cpu_count() or 2}", "TARGET=cortex_m_qemu", f"TARGET_ARCH={cpu}",
            f"EXTERNAL_DIR={SOURCES}"]
    if kernels != "reference":
        args.append(f"OPTIMIZED_KERNEL_DIR={kernels}")
    args += _ccache_compilers()
    args += [f"{k}={v}" for k, v in variables.items()]
    return args


def _ccache_compilers() -> list[str]:
    """CC and CXX through ccache where it is installed (TFLM_VIT_CCACHE=0 turns it off).
    The reference and CMSIS-NN builds of one CPU share sources (TFLM's core and the kernels
    CMSIS-NN does not replace) whose commands differ only in -D and -I flags, which
    ccache's preprocessor mode does not hash: the M7's CMSIS-NN build took 192 of its 342
    objects from the reference build's compiles (a fresh build folder, 2 cores). The
    objects are the compiler's own, so code, counts and sizes are unchanged."""
    ccache = shutil.which("ccache")
    if ccache is None or os.environ.get("TFLM_VIT_CCACHE") == "0":
        return []
    return [f"CC={ccache} arm-none-eabi-gcc", f"CXX={ccache} arm-none-eabi-g++"]


def bindir(tree: pathlib.Path, cpu: str, kernels: str) -> pathlib.Path:
    suffix = "" if kernels == "reference" else f"_{kernels}"
    return tree / "gen" / f"cortex_m_qemu_{cpu}_default{suffix}_gcc" / "bin"


def build(cpu: str, kernels: str, targets=("tflm_vit_vector_tests", "tflm_vit_model_runner"),
          **variables) -> Build:
    """Builds TFLM (first time: minutes) with our ops and the given binaries."""
    _need("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    tree = tflm_tree()
    runner_ops = build_dir() / "firmware" / "runner_ops"
    _write_runner_ops(runner_ops)
    variables.setdefault("TFLM_VIT_RUNNER_OPS_DIR", runner_ops)
    _drop_objects_if_headers_changed(bindir(tree, cpu, kernels).parent, runner_ops)
    _drop_archive(bindir(tree, cpu, kernels).parent)
    proc = subprocess.run(make_args(tree, cpu, kernels, **variables) + list(targets),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines()
                  if "error" in line.lower()]
        raise FirmwareError(f"firmware build for {cpu} ({kernels}) failed: "
                            + "\n".join(errors[-15:] or proc.stderr.splitlines()[-15:]))
    return Build(cpu, kernels, bindir(tree, cpu, kernels))


def _drop_archive(gen: pathlib.Path) -> None:
    """TFLM's make adds objects to its library with `ar -r` into the archive it built
    before: a rebuilt member keeps its place, a new one goes last, and a member whose
    source is gone stays. So an incremental build links in another order than a fresh one
    (the M7 firmware's flash came out 8 bytes apart, alignment padding) and could link a
    deleted file's code. Archiving anew costs a second; every build starts from none."""
    (gen / "lib" / "libtensorflow-microlite.a").unlink(missing_ok=True)


def _drop_objects_if_headers_changed(gen: pathlib.Path, generated: pathlib.Path) -> None:
    """TFLM's make has no header dependencies (its DEPDIR is never set), so after a
    header of ours changes it would link objects compiled against the old one: a struct
    that grew a field then reads as garbage in every file make did not recompile (and a
    runner_ops.h with another op count does not link). So when our headers, the
    generated ones in `generated` included, differ from those of the last build in
    `gen`, our objects go."""
    digest = hashlib.sha256()
    for root in (SOURCES, generated):
        for path in sorted(root.rglob("*.h")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    stamp = gen / "tflm_vit_headers.sha256"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    ours = str(SOURCES).lstrip("/")  # objects mirror the absolute source path under obj/
    objects = gen / "obj"
    for obj in objects.rglob("*.o") if objects.exists() else ():
        if ours in str(obj.relative_to(objects)):
            obj.unlink()
    gen.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest.hexdigest())


def _write_runner_ops(folder: pathlib.Path) -> None:
    """runner_ops.{h,cc}: RegisterOps for every op tflm-vit supports, generated by the
    same code as `tflm-vit export-c` (one op table)."""
    from tflm_vit.export_c import RESOLVER_METHODS, resolver_source
    from tflm_vit import ops
    decl, body = resolver_source(sorted(RESOLVER_METHODS), sorted(ops.CODES), "runner_ops")
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "runner_ops.h": ("// Generated by tflm_vit/firmware/qemu.py; do not edit.\n"
                         "#include \"tensorflow/lite/micro/micro_mutable_op_resolver.h\"\n"
                         f"namespace runner_ops {{\n{decl}}}  // namespace runner_ops\n"),
        "runner_ops.cc": ("// Generated by tflm_vit/firmware/qemu.py; do not edit.\n"
                          "#include \"runner_ops.h\"\n#include \"op_table.h\"\n"
                          f"namespace runner_ops {{\n{body}}}  // namespace runner_ops\n"),
    }
    for name, text in files.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:  # keep make's timestamps
            path.write_text(text)


@dataclasses.dataclass(frozen=True)
class Run:
    returncode: int
    output: str


def run(elf, cpu: str, args=(), marker: str | None = None, timeout: float = 300,
        qemu_args=()) -> Run:
    """Runs the ELF on the emulated CPU with semihosting (args become its argv).
    With a marker, anything but exit 0 plus the marker raises FirmwareError."""
    qemu = _need("qemu-system-arm", "qemu-system-arm")
    if cpu not in MACHINES:
        raise FirmwareError(f"unknown cpu {cpu!r}; choose one of {', '.join(MACHINES)}")
    semihosting = ",".join(["enable=on", "target=native", f"arg={pathlib.Path(elf).name}"]
                           + [f"arg={a}" for a in args])
    if any("," in str(a) for a in args):
        raise FirmwareError("semihosting arguments cannot contain ','")
    cmd = [qemu, "-M", MACHINES[cpu], "-cpu", cpu, "-nographic", "-monitor", "none",
           "-serial", "none", "-semihosting-config", semihosting, *qemu_args,
           "-kernel", str(elf)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) \
            else (e.stdout or "")
        raise FirmwareError(f"{pathlib.Path(elf).name} on {cpu}: no exit after {timeout:.0f} s "
                            f"(hang); last output: {out[-500:]!r}") from None
    result = Run(proc.returncode, proc.stdout + proc.stderr)
    if marker is not None:
        check(result, elf, cpu, marker)
    return result


def check(result: Run, elf, cpu: str, marker: str) -> None:
    name = pathlib.Path(elf).name
    tail = result.output[-1500:]
    if result.returncode in FAULTS:
        raise FirmwareError(f"{name} on {cpu}: {FAULTS[result.returncode]}; output: {tail}")
    if result.returncode != 0:
        raise FirmwareError(f"{name} on {cpu}: exit {result.returncode}; output: {tail}")
    if marker not in result.output:
        raise FirmwareError(f"{name} on {cpu}: exited 0 without its pass marker {marker}; "
                            f"output: {tail}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build TFLM with our ops and the test binaries")
    b.add_argument("--cpu", choices=sorted(MACHINES), default="cortex-m7")
    b.add_argument("--kernels", choices=KERNELS, default="reference")
    r = sub.add_parser("run", help="run an ELF under qemu-system-arm")
    r.add_argument("--cpu", choices=sorted(MACHINES), default="cortex-m7")
    r.add_argument("--marker", help="pass marker the output must contain")
    r.add_argument("--timeout", type=float, default=300)
    r.add_argument("elf")
    r.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    try:
        if a.cmd == "build":
            print(build(a.cpu, a.kernels).bindir)
            return 0
        result = run(a.elf, a.cpu, a.args, a.marker, a.timeout)
        sys.stdout.write(result.output)
        return result.returncode
    except FirmwareError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
