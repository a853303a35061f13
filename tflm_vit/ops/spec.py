"""What one of our ops is, declared once: its custom code and kind, its option fields,
where its output may overwrite an input (the planner's token overwriting), how far it
may be from the stock ops it replaces, its latency features and its NumPy twin.

Each op is one module of tflm_vit/ops; tflm_vit/ops/__init__.py lists them, and the
options codec (tflm_vit/twins/options.py, and from it the C headers tv_op_fields.h and
option_names.h), the memory model's in-place rules (tflm_vit/memory/aliasing.py), the
conversion's checks (tflm_vit/converters/verify.py), the latency model
(tflm_vit/latency.py) and the wheel's op library derive from that list. What stays elsewhere, because it is not one op's: the
stock patterns a rewrite matches (one pattern may become several ops:
tflm_vit/converters/patterns.py, rewrites.py) and the C kernels (custom_ops/)."""

from __future__ import annotations

import dataclasses
from typing import Callable

# Where an op's output may start relative to an input (tflm_vit/memory/aliasing.py).
OVER_INPUT0 = "input0"        # on input 0's first byte: the kernel walks tokens safely
OVER_IMAGE_AT_LEAD = "lead"   # output_lead bytes before input 0 (the patch embedding)


@dataclasses.dataclass(frozen=True)
class OpSpec:
    code: str                      # the custom code in the model (TFLM's op name)
    kind: int                      # tv_op_kind in C; the options blob carries it
    fields: tuple[str, ...] | None  # option fields in blob order (None: computed, MLP)
    overwrite: str | None          # OVER_INPUT0, OVER_IMAGE_AT_LEAD or None
    stock_lsb_bound: int           # |ours - stock| beyond stock's own error, in LSB
    exact_with_stock: bool         # bit-exact with the stock ops it replaces
    error_kind: str                # its name in the per-op error tables (fidelity)
    # (options, elements of the output) -> (int8 MACs, per-element work): the latency
    # model's features (tflm_vit/latency.py).
    features: Callable[[dict, int], tuple[int, int]]
    twin: str                      # the module of its NumPy twin (tflm_vit.twins.*)
    # options -> the tensors, as ("input" | "output", index) in order, whose quantization
    # its adapter's Prepare reads (CheckZeroPoint, custom_ops/tflm/*_op.cc): each is a
    # TFLM temporary TfLiteTensor, held until that Prepare ends, so they set the room the
    # op needs while it prepares (tflm_vit/memory/tail.py prepare_need).
    zero_point_checks: Callable[[dict], tuple[tuple[str, int], ...]] = \
        lambda f: (("input", 0), ("output", 0))
