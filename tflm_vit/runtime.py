"""The stock TFLM interpreter (the `tflite-micro` wheel): build, run, and read its arena.

All wheel errors become errors that name the problem (an unresolvable op, an
arena too small, a model that is not a TFLite file).
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import tempfile

import numpy as np
from tflite_micro.python.tflite_micro import runtime as tflm

from tflm_vit import op_library
from tflm_vit.errors import CustomOpError, ModelFileError, TflmVitError, UnsupportedOpError
from tflm_vit.fdcapture import capture_fd
from tflm_vit.tflite_model import ModelInfo, load_model

_MISSING_BUILTIN = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'")
_MISSING_CUSTOM = re.compile(r"Didn't find op for custom opcode '([^']+)'")
_ALLOC_LINE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")
_BUCKET_LINE = re.compile(r"'([^']+)' used (\d+) bytes with alignment overhead "
                          r"\(requested (\d+) bytes for (\d+) ")
_OUR_OP_ERROR = re.compile(r"^(?:TV_[A-Z_]+|TflmVitRegisterOps): .*$", re.MULTILINE)
_OUT_OF_ARENA = re.compile(r"(Failed to (resize buffer|allocate (tail |head )?memory)"
                           r"|Too many buffers)[^\n]*")
# The wheel can crash (SIGSEGV) instead of failing cleanly when the arena is too small,
# so in-process calls only ever use an arena known to be large enough, and probing of
# small sizes runs in a child process.
_PROBE = """
import ctypes, sys
from tflite_micro.python.tflite_micro import runtime as tflm
data = open(sys.argv[1], "rb").read()
registerers = []
if len(sys.argv) > 3:  # our op library, then its registerer
    ctypes.CDLL(sys.argv[3], mode=ctypes.RTLD_GLOBAL)
    registerers = [sys.argv[4]]
try:
    tflm.Interpreter.from_bytes(data, custom_op_registerers=registerers,
                                arena_size=int(sys.argv[2]))
except RuntimeError:
    sys.exit(3)
print("FITS")
"""


def safe_arena_size(info: ModelInfo) -> int:
    """An arena that certainly holds the model: every tensor twice (BATCH_MATMUL may keep
    transposed copies of constants) plus generous per-op bookkeeping. A multiple of 16, so
    the arena's end is as aligned as its start and the recorded tail does not depend on
    where the host allocator put the arena."""
    size = (1 << 20) + 2 * sum(t.nbytes for t in info.tensors) + 4096 * len(info.ops)
    return (size + 15) // 16 * 16


class ArenaTooSmallError(TflmVitError, RuntimeError):
    def __init__(self, arena_size: int, detail: str = ""):
        self.arena_size = arena_size
        super().__init__(f"arena of {arena_size} bytes is too small for the model"
                         + (f": {detail.strip()}" if detail.strip() else ""))


@dataclasses.dataclass(frozen=True)
class ArenaAllocations:
    """What TFLM's RecordingMicroAllocator printed (print_allocations)."""

    total: int
    head: int
    tail: int
    buckets: dict  # tail bucket name -> (used bytes, requested bytes, count)


def _explain_failure(text: str, info: ModelInfo, arena_size: int) -> Exception:
    ours = _OUR_OP_ERROR.findall(text)
    if ours:
        return CustomOpError("; ".join(dict.fromkeys(line.strip() for line in ours)))
    m = _MISSING_BUILTIN.search(text)
    if m:
        return UnsupportedOpError(m.group(1), [o.index for o in info.ops if o.name == m.group(1)])
    m = _MISSING_CUSTOM.search(text)
    if m:
        return UnsupportedOpError(m.group(1), [o.index for o in info.ops if o.name == m.group(1)])
    if "Failed to get registration from op code CUSTOM" in text:
        # Our ops are registered whenever the model uses them (registerers_for): only
        # the others can be the missing ones.
        names = sorted({o.name for o in info.ops} - set(_builtin_names())
                       - set(op_library.CUSTOM_CODES))
        return UnsupportedOpError(", ".join(names) or "CUSTOM",
                                  [o.index for o in info.ops if o.name in names])
    m = _OUT_OF_ARENA.search(text)
    if m:
        return ArenaTooSmallError(arena_size, m.group(0))
    return TflmVitError(f"TFLM could not load the model: {text.strip()}")


def _builtin_names():
    from tflm_vit.tflite_model import BUILTIN_NAMES
    return BUILTIN_NAMES.values()


def registerers_for(info: ModelInfo, extra=()) -> list[str]:
    """The registerers a model needs: ours when it uses our ops, plus `extra`."""
    names = list(extra)
    if op_library.uses_our_ops(op.name for op in info.ops) and op_library.REGISTERER not in names:
        names.append(op_library.load())
    return names


def make_interpreter(model, arena_size: int | None = None, preserve_all_tensors=False,
                     custom_op_registerers=()):
    """A wheel Interpreter for `model` (path or bytes). With arena_size None, uses an
    arena that certainly fits; an explicit arena_size below what TFLM records for the
    model is refused with ArenaTooSmallError before the wheel sees it. Models with our
    ops get our registerer automatically. Returns (interpreter, arena_size used)."""
    data, info = load_model(model)
    from tflm_vit.aborts import check_loads
    check_loads(info)  # before the wheel can abort the process
    custom_op_registerers = registerers_for(info, custom_op_registerers)
    safe = safe_arena_size(info)
    if arena_size is not None:
        if int(arena_size) <= 0:
            raise ArenaTooSmallError(int(arena_size), "arena_size must be positive")
        if int(arena_size) < safe:
            needed = allocations(data, custom_op_registerers=custom_op_registerers).total
            if int(arena_size) < needed:
                raise ArenaTooSmallError(int(arena_size), f"TFLM records {needed} bytes")
    size = int(arena_size) if arena_size is not None else safe
    config = (tflm.InterpreterConfig.kPreserveAllTensors if preserve_all_tensors
              else tflm.InterpreterConfig.kAllocationRecording)
    with capture_fd(2) as log:
        try:
            interp = tflm.Interpreter.from_bytes(
                data, custom_op_registerers=list(custom_op_registerers),
                arena_size=size, intrepreter_config=config)
        except RuntimeError as e:
            interp, text = None, str(e)
    if interp is None:
        raise _explain_failure(text + "\n" + log[0], info, size)
    return interp, size


def allocations(model, custom_op_registerers=()) -> ArenaAllocations:
    """Arena total / head / tail as TFLM's recording allocator reports them."""
    interp, _ = make_interpreter(model, custom_op_registerers=custom_op_registerers)
    with capture_fd(2) as log:
        interp.print_allocations()
    text = log[0]
    figures = {k: int(v) for k, v in _ALLOC_LINE.findall(text)}
    if set(figures) != {"total", "head", "tail"}:
        raise TflmVitError("could not read the arena figures from TFLM's "
                           f"print_allocations output: {text!r}")
    buckets = {name: (int(u), int(r), int(n)) for name, u, r, n in _BUCKET_LINE.findall(text)}
    return ArenaAllocations(figures["total"], figures["head"], figures["tail"], buckets)


def fits(model, arena_size: int) -> bool:
    """Whether TFLM can allocate `model` in exactly `arena_size` bytes. Runs in a child
    process, because the wheel may crash rather than fail on a small arena."""
    data, info = load_model(model)
    extra = []
    if registerers_for(info):
        extra = [str(op_library.library_path()), op_library.REGISTERER]
    with tempfile.NamedTemporaryFile(suffix=".tflite") as f:
        f.write(data)
        f.flush()
        # -P: the working directory may hold another `tflm_vit` (a source checkout).
        proc = subprocess.run([sys.executable, "-P", "-c", _PROBE, f.name,
                               str(int(arena_size)), *extra],
                              capture_output=True, text=True, timeout=300)
    if proc.returncode == 0 and "FITS" in proc.stdout:
        return True
    if proc.returncode in (3, -11):  # refused, or the wheel's crash on a too-small arena
        return False
    raise TflmVitError(f"probing an arena of {int(arena_size)} bytes failed for another "
                       f"reason (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")


def smallest_arena(model, upper: int) -> int:
    """Binary search for the smallest arena_size that TFLM accepts (<= upper, which must
    fit). Confirms a reported total independently of print_allocations; it can sit a few
    bytes under the total because TFLM aligns the tail to 16 inside the arena."""
    if not fits(model, upper):
        raise ArenaTooSmallError(upper)
    lo, hi = 0, upper  # lo fails (or is 0), hi fits
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if fits(model, mid) else (mid, hi)
    return hi


def invoke(model_or_interp, images: np.ndarray) -> np.ndarray:
    """Run a batch-1 model over each image (int8 NHWC batch); returns stacked outputs."""
    interp = model_or_interp
    if not isinstance(interp, tflm.Interpreter):
        interp, _ = make_interpreter(model_or_interp)
    detail = interp.get_input_details(0)
    shape, dtype = tuple(detail["shape"]), np.dtype(detail["dtype"])
    images = np.asarray(images)
    if images.dtype != dtype or tuple(images.shape[1:]) != shape[1:]:
        raise ModelFileError(f"input must be {dtype.name} images of shape {shape[1:]}, got "
                             f"{images.dtype.name} {tuple(images.shape[1:])}")
    outs = []
    for img in images:
        interp.set_input(img[np.newaxis], 0)
        interp.invoke()
        outs.append(interp.get_output(0)[0].copy())
    return np.stack(outs)


def quantization(details: dict) -> tuple[float, int]:
    """(scale, zero_point) of an input/output details dict."""
    q = details["quantization_parameters"]
    return float(q["scales"][0]), int(q["zero_points"][0])
