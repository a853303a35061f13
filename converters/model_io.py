"""Reading and writing models for the converter, on top of TFLM's model_editor (the
wheel's flatbuffer editor): constants as NumPy arrays, quantisation parameters, new
constant tensors, pruning what a rewrite orphaned, and a 16-byte aligned build.

model_editor keeps every schema field of a tensor or an operator but names only some
(shape, type, buffer, quantisation; opcode, inputs, outputs); the rest (builtin and
custom options, shape signatures, signature defs) sit in the schema object it wraps,
its `_fb`. The accessors below are the one place the converters reach it."""

from __future__ import annotations

import copy
import os
import tempfile

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper as align

from tflm_vit.errors import ConversionError

INT8, INT32 = schema.TensorType.INT8, schema.TensorType.INT32
_NUMPY = {schema.TensorType.INT8: np.int8, schema.TensorType.INT32: np.int32,
          schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT64: np.int64}


def read(data: bytes) -> me.Model:
    return me.read(bytes(data))


def tensor_name(t: me.Tensor) -> str:
    return t.name if t.name else f"tensor {t._index}"


def quant(t: me.Tensor, what: str) -> tuple[float, int]:
    """(scale, zero_point) of a per-tensor quantised tensor."""
    q = t.quantization
    if q is None or not q.scales:
        raise ConversionError(f"{what}: tensor '{tensor_name(t)}' has no quantisation")
    scales = q.scales if isinstance(q.scales, (list, tuple)) else [q.scales]
    zeros = q.zero_points if isinstance(q.zero_points, (list, tuple)) else [q.zero_points]
    if len(scales) != 1:
        raise ConversionError(f"{what}: tensor '{tensor_name(t)}' is per-channel, expected "
                              "one scale")
    return float(scales[0]), int(zeros[0])


def channel_scales(t: me.Tensor, channels: int) -> np.ndarray:
    """Weight scales broadcast to one per output channel."""
    scales = np.asarray(t.quantization.scales, np.float64).ravel()
    if scales.size not in (1, channels):
        raise ConversionError(f"tensor '{tensor_name(t)}' has {scales.size} scales for "
                              f"{channels} channels")
    return np.broadcast_to(scales, (channels,)).copy()


def const(t: me.Tensor | None) -> np.ndarray | None:
    """A constant tensor's data, shaped; None for an absent tensor."""
    if t is None:
        return None
    if t.buffer is None or not t.buffer.data:
        raise ConversionError(f"tensor '{tensor_name(t)}' is not a constant")
    return np.frombuffer(t.buffer.data, _NUMPY[t.dtype]).reshape(t.shape)


def dequantized_const(t: me.Tensor) -> np.ndarray:
    data = const(t).astype(np.float64)
    q = t.quantization
    if q is None or not q.scales:
        return data
    scales = np.asarray(q.scales, np.float64)
    zeros = np.asarray(q.zero_points, np.float64)
    if scales.size == 1:
        return (data - zeros[0]) * scales[0]
    axis = q.axis or 0
    shape = [1] * data.ndim
    shape[axis] = -1
    return (data - zeros.reshape(shape)) * scales.reshape(shape)


def new_const(name: str, array: np.ndarray) -> me.Tensor:
    array = np.ascontiguousarray(array)
    dtype = {np.dtype(np.int8): INT8, np.dtype(np.int32): INT32}[array.dtype]
    return me.Tensor(shape=array.shape, dtype=dtype, data=array.tobytes(), name=name)


def consumers(sg, t: me.Tensor) -> list:
    """The operators of subgraph `sg` that read tensor `t`."""
    return [op for op in sg.operators if any(u is t for u in op.inputs)]


def is_constant(t: me.Tensor | None) -> bool:
    return t is not None and t.buffer is not None and bool(t.buffer.data)


def prune(model: me.Model) -> None:
    """Drop the tensors no operator, input or output uses any more (and their buffers),
    remapping signature indices, so TFLM sees no orphaned tensors."""
    for sg_index, sg in enumerate(model.subgraphs):
        used = {id(t) for op in sg.operators for t in op.inputs + op.outputs if t is not None}
        used |= {id(t) for t in sg.inputs + sg.outputs}
        old_index = {id(t): i for i, t in enumerate(sg.tensors)}
        sg.tensors = [t for t in sg.tensors if id(t) in used]
        new_index = {old_index[id(t)]: i for i, t in enumerate(sg.tensors) if id(t) in old_index}
        for sig in model._fb.signatureDefs or []:  # the signature defs: see above
            if sig.subgraphIndex != sg_index:
                continue
            for tmap in (sig.inputs or []) + (sig.outputs or []):
                tmap.tensorIndex = new_index[tmap.tensorIndex]
    me.prune_buffers(model)


def builtin_options(op: me.Operator):
    """The op's builtin options (a schema *OptionsT object), or None."""
    return op._fb.builtinOptions


def copy_builtin_options(src: me.Operator, dst: me.Operator) -> None:
    dst._fb.builtinOptions = copy.deepcopy(src._fb.builtinOptions)
    dst._fb.builtinOptionsType = src._fb.builtinOptionsType


def set_builtin_options(op: me.Operator, options, kind: int) -> None:
    """A builtin op's options: a schema *OptionsT object and its BuiltinOptions kind."""
    op._fb.builtinOptions = options
    op._fb.builtinOptionsType = kind


def set_custom_options(op: me.Operator, data: bytes) -> None:
    """A custom op's options, as a FlexBuffers map (tflm_vit/twins/options.py)."""
    op._fb.customOptions = list(data)
    op._fb.customOptionsFormat = schema.CustomOptionsFormat.FLEXBUFFERS


def shape_signature(t: me.Tensor) -> tuple[int, ...]:
    """The tensor's shape with -1 for a free dimension (its shape when it has none)."""
    sig = t._fb.shapeSignature
    return tuple(int(d) for d in (sig if sig is not None and len(sig) else t.shape))


def drop_shape_signature(t: me.Tensor) -> None:
    """The tensor's shape is static: no signature."""
    t._fb.shapeSignature = None


def build(model: me.Model) -> bytes:
    """Serialise, then re-align constant buffers to 16 bytes with the wheel's aligner
    (the Python packer does not force the schema's alignment)."""
    raw = bytes(model.build())
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.tflite"), os.path.join(tmp, "out.tflite")
        with open(src, "wb") as f:
            f.write(raw)
        align.align_tflite_model(src, dst)
        with open(dst, "rb") as f:
            return f.read()
