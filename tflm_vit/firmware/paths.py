"""Where the firmware pieces live.

`SOURCES` is custom_ops/ (portable kernels, TFLM adapters, the make / CMake / bazel
fragments, boards, the model runner and the instruction-count plugin): the checkout's
when this package runs from one, else the copy installed with the package
(pyproject.toml ships it as tflm_vit/custom_ops), so `import tflm_vit.firmware` works the
same from a wheel. Builds go under `build_dir()`: $TFLM_VIT_BUILD_DIR, else ./build (the
repository's, run from its root as the Makefile, tests and benches are)."""

from __future__ import annotations

import os
import pathlib

_PACKAGE = pathlib.Path(__file__).resolve().parents[1]
_CHECKOUT = _PACKAGE.parent / "custom_ops"
SOURCES = _CHECKOUT if (_CHECKOUT / "firmware").is_dir() else _PACKAGE / "custom_ops"
FIRMWARE = SOURCES / "firmware"


def build_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("TFLM_VIT_BUILD_DIR", "build")).resolve()


def third_party_dir() -> pathlib.Path:
    """Where a TFLM tarball may wait (tflm_tree.sh): $TFLM_VIT_THIRD_PARTY, else
    shared/third_party beside the folder that holds the build folder."""
    env = os.environ.get("TFLM_VIT_THIRD_PARTY")
    return pathlib.Path(env) if env else build_dir().parent.parent / "shared" / "third_party"
