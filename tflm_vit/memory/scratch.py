"""Scratch-buffer requests each op makes in Prepare, in request order.

Our ops: the sizes their adapters request (custom_ops/tflm/*_op.cc), from the portable
kernels' *_scratch_size() functions themselves, fed the op's options
(custom_ops/kernels/tv_op_scratch.c, through tflm_vit._kernels). Builtins: what TFLM's reference kernels
request for the int8 ops a ViT uses (checked against the wheel by the memory model
tests), or, for a CMSIS-NN build on a Cortex-M with DSP (M4/M7), what TFLM's cmsis_nn
ports request (checked on the emulated M4/M7 by tests/test_firmware.py); a builtin not
listed is assumed to request none, and the prediction says so.
"""

from __future__ import annotations

import numpy as np

from tflm_vit.errors import ModelFileError
from tflm_vit.twins import options as tv_options
from tflm_vit.tflite_model import ModelInfo, OpInfo

# Builtins whose int8 reference kernels request no scratch in the wheel.
NO_SCRATCH_BUILTINS = frozenset({
    "ADD", "SUB", "MUL", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX", "LOGISTIC", "QUANTIZE",
    "DEQUANTIZE", "TRANSPOSE", "BATCH_MATMUL", "CONV_2D", "SQUARED_DIFFERENCE", "RSQRT",
    "NEG", "STRIDED_SLICE", "CONCATENATION", "GATHER", "PACK", "UNPACK", "SPLIT", "TANH",
})
# MEAN / SUM (int8): an int32 accumulator per output element, the input's dims, the axes.
REDUCERS = frozenset({"MEAN", "SUM"})


def custom_options(info: ModelInfo, op: OpInfo) -> bytes:
    raw = info.model.subgraphs[0].operators[op.index].customOptions
    return bytes(np.asarray(raw, dtype=np.uint8)) if raw is not None else b""


def our_options(info: ModelInfo, op: OpInfo) -> dict:
    """The option fields of one of our ops; ModelFileError when they are unreadable."""
    try:
        return tv_options.unpack(op.name, custom_options(info, op))
    except (ValueError, KeyError) as e:
        raise ModelFileError(f"op {op.index} ({op.name}): unreadable options: {e}") from None


def _ours(info: ModelInfo, op: OpInfo) -> list[int]:
    """The op's scratch request, from its options, sized by the C kernels themselves
    (tv_op_scratch_size: one definition for the adapters and this model)."""
    from tflm_vit import _kernels
    our_options(info, op)  # every field there (the C side checks only what it reads)
    size = _kernels.op_scratch_size(custom_options(info, op), tv_options.OPS[op.name][0])
    return [size] if size else []


def _cmsis_nn(info: ModelInfo, op: OpInfo) -> list[int]:
    """TFLM's cmsis_nn kernels on a DSP core (arm-none-eabi-gcc, no MVE)."""
    t = info.tensors
    if op.name == "CONV_2D":
        # arm_convolve_wrapper_s8_get_buffer_size (DSP): 1x1 kernels need none, every
        # other shape an im2col of two columns of int16.
        _, kh, kw, c = t[op.inputs[1]].shape
        if kh == 1 and kw == 1:
            return []
        cols = kh * kw * c
        return [2 * 2 * (cols + (-cols % 4))]
    if op.name == "FULLY_CONNECTED":
        # The conv-1x1 route (output rank > 2, depth a multiple of 4) fakes per-channel
        # quantization of a per-tensor filter in a scratch buffer.
        q = info.model.subgraphs[0].tensors[op.inputs[1]].quantization
        per_channel = q is not None and q.scale is not None and len(q.scale) > 1
        depth = t[op.inputs[1]].shape[-1]
        if len(t[op.outputs[0]].shape) > 2 and depth % 4 == 0 and not per_channel:
            return [8 * t[op.inputs[1]].shape[0]]
    return []


def scratch_requests(info: ModelInfo, op: OpInfo, kernels: str = "reference") -> list[int]:
    """Bytes of each scratch buffer `op` requests, in order, with TFLM's `kernels`
    ("reference" or "cmsis_nn")."""
    if kernels == "cmsis_nn" and op.name in ("CONV_2D", "FULLY_CONNECTED"):
        return _cmsis_nn(info, op)
    if op.name in tv_options.OPS:
        return _ours(info, op)
    if op.name in REDUCERS:
        t = info.tensors
        return [4 * max(1, int(np.prod(t[op.outputs[0]].shape))),
                4 * len(t[op.inputs[0]].shape), 4 * max(1, int(np.prod(t[op.inputs[1]].shape)))]
    return []


def unknown_builtins(info: ModelInfo) -> list[str]:
    """Ops whose scratch requests the model does not know (predictions may be low)."""
    return sorted({op.name for op in info.ops
                   if op.name not in tv_options.OPS and op.name not in NO_SCRATCH_BUILTINS
                   and op.name not in REDUCERS})
