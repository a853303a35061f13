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

from tflm_vit import ops
from tflm_vit.errors import ModelFileError
from tflm_vit.twins import options as tv_options
from tflm_vit.tflite_model import ModelInfo, OpInfo

# Builtins whose int8 reference kernels request no scratch in the wheel.
NO_SCRATCH_BUILTINS = frozenset({
    "ADD", "SUB", "MUL", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX", "LOGISTIC", "QUANTIZE",
    "DEQUANTIZE", "TRANSPOSE", "BATCH_MATMUL", "CONV_2D", "SQUARED_DIFFERENCE", "RSQRT",
    "NEG", "STRIDED_SLICE", "CONCATENATION", "GATHER", "PACK", "UNPACK", "SPLIT", "TANH",
    "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "PAD", "HARD_SWISH", "RELU",
    "RELU6", "SHAPE", "SLICE",
})
CMSIS_NN_SCRATCH = frozenset({"CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D",
                              "AVERAGE_POOL_2D"})
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
    size = _kernels.op_scratch_size(custom_options(info, op), ops.BY_CODE[op.name].kind)
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
    if op.name == "AVERAGE_POOL_2D":  # arm_avgpool_s8_get_buffer_size (DSP): an int32 sum per channel
        return [4 * t[op.inputs[0]].shape[3]]
    if op.name == "DEPTHWISE_CONV_2D":
        return _cmsis_nn_depthwise(info, op)
    return []


def _cmsis_nn_depthwise(info: ModelInfo, op: OpInfo) -> list[int]:
    """arm_depthwise_conv_wrapper_s8_get_buffer_size on a DSP core: a depth multiplier of
    1 without dilation takes the optimised kernel, which needs an int16 column of
    c x kh x kw, except the 3x3 kernel with padding <= 1 that has its own route."""
    t = info.tensors
    _, in_h, in_w, in_c = t[op.inputs[0]].shape
    _, out_h, out_w, out_c = t[op.outputs[0]].shape
    _, kh, kw, _ = t[op.inputs[1]].shape
    opts = info.model.subgraphs[0].operators[op.index].builtinOptions
    dil_h, dil_w = opts.dilationHFactor, opts.dilationWFactor
    if in_c != out_c or dil_h != 1 or dil_w != 1:
        return []
    pad_h = _padding(opts.strideH, dil_h, in_h, kh, out_h)
    pad_w = _padding(opts.strideW, dil_w, in_w, kw, out_w)
    if kh == 3 and kw == 3 and pad_h <= 1 and pad_w <= 1:
        return []
    return [2 * in_c * kh * kw]


def _padding(stride: int, dilation: int, in_size: int, filter_size: int, out_size: int) -> int:
    """TFLM's ComputePaddingWithOffset: the leading padding."""
    effective = (filter_size - 1) * dilation + 1
    return max((out_size - 1) * stride + effective - in_size, 0) // 2


def scratch_requests(info: ModelInfo, op: OpInfo, kernels: str = "reference") -> list[int]:
    """Bytes of each scratch buffer `op` requests, in order, with TFLM's `kernels`
    ("reference" or "cmsis_nn")."""
    if kernels == "cmsis_nn" and op.name in CMSIS_NN_SCRATCH:
        return _cmsis_nn(info, op)
    if op.name in ops.BY_CODE:
        return _ours(info, op)
    if op.name in REDUCERS:
        t = info.tensors
        return [4 * max(1, int(np.prod(t[op.outputs[0]].shape))),
                4 * len(t[op.inputs[0]].shape), 4 * max(1, int(np.prod(t[op.inputs[1]].shape)))]
    return []


def unknown_builtins(info: ModelInfo) -> list[str]:
    """Ops whose scratch requests the model does not know (predictions may be low)."""
    return sorted({op.name for op in info.ops
                   if op.name not in ops.BY_CODE and op.name not in NO_SCRATCH_BUILTINS
                   and op.name not in REDUCERS})
