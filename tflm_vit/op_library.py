"""The library of our TFLM ops, loaded into the tflite-micro wheel.

The adapters (custom_ops/tflm) are built into libtflm_vit_ops.so next to this file.
Loading it with RTLD_GLOBAL lets the wheel find the registerer symbol by dlsym; the
registerer checks the wheel's resolver layout before writing into it and refuses a
wheel that differs (wheel_facts.md)."""

from __future__ import annotations

import ctypes
import functools
import pathlib

from tflm_vit.errors import TflmVitError
from tflm_vit import ops

REGISTERER = "TflmVitRegisterOps"
CUSTOM_CODES = ops.CODES  # the custom codes of our ops: one list (tflm_vit/ops)
LIBRARY_NAME = "libtflm_vit_ops.so"


def library_path() -> pathlib.Path:
    return pathlib.Path(__file__).with_name(LIBRARY_NAME)


@functools.cache
def load() -> str:
    """Loads the op library once (globally) and returns the registerer's name, for
    Interpreter.from_bytes(..., custom_op_registerers=[load()])."""
    path = library_path()
    if not path.exists():
        raise TflmVitError(f"{path} is missing: reinstall tflm-vit (pip install .) to build it")
    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    return REGISTERER


def uses_our_ops(op_names) -> bool:
    return any(name in CUSTOM_CODES for name in op_names)
