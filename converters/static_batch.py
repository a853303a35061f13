"""A model with a free batch, made static at batch 1 on the way into `convert`.

`TFLiteConverter.from_keras_model` (the route TFLite's docs teach) keeps the batch
dimension free: tensors carry -1 in their shape signature, a Dense on a 3-D input becomes
SHAPE -> GATHER -> REDUCE_PROD -> PACK -> RESHAPE(rows, features) -> FULLY_CONNECTED ->
RESHAPE back, and the stored shapes downstream of such a RESHAPE are placeholders
((1, 1) where the truth is (tokens, features)). TFLM cannot run REDUCE_PROD, and neither
can our patterns see through the chains.

At batch 1 every one of those shape computations is a constant: this pass fixes the
graph inputs' batch to 1, evaluates the integer shape ops whose inputs are known
(SHAPE, GATHER, STRIDED_SLICE, REDUCE_PROD, PACK, CONCATENATION) and drops them, turns
each RESHAPE's shape into a constant, and infers every other tensor's shape op by op.
What it cannot infer is a ConversionError naming the op. Last, the RESHAPEs that only
flatten a FULLY_CONNECTED's leading dimensions and restore them after it go (the op then
keeps its leading dimensions itself), so the MLP pattern sees FC -> GELU -> FC again.
The arithmetic on activations is untouched, so the static model computes what the
free-batch one computes at batch 1.
"""

from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflm_vit.converters import model_io as mio
from tflm_vit.errors import ConversionError
from tflm_vit.tflite_model import BUILTIN_NAMES

B = schema.BuiltinOperator
FOLDABLE = {B.SHAPE, B.GATHER, B.STRIDED_SLICE, B.REDUCE_PROD, B.PACK, B.CONCATENATION}
# Output shape = the broadcast of the inputs' shapes.
ELEMENTWISE = {B.ADD, B.SUB, B.MUL, B.SQUARED_DIFFERENCE, B.LOGISTIC, B.GELU, B.TANH,
               B.RSQRT, B.NEG, B.DEQUANTIZE, B.QUANTIZE, B.RELU, B.RELU6, B.HARD_SWISH,
               B.SOFTMAX}
# Output shape = the stored one with the batch set to 1 (ops whose axis 0 is the batch).
BATCH_FIRST = {B.CONV_2D, B.DEPTHWISE_CONV_2D, B.AVERAGE_POOL_2D, B.MAX_POOL_2D, B.PAD}


def is_dynamic(model: me.Model) -> bool:
    return any(-1 in mio.shape_signature(t) for t in model.subgraphs[0].tensors)


def _name(op) -> str:
    return BUILTIN_NAMES.get(op.opcode, str(op.opcode))


def _where(i, op) -> str:
    return f"op {i} ({_name(op)})"


def make_static(model: me.Model) -> int:
    """Rewrites `model` in place at batch 1; returns the number of shape ops folded.
    ConversionError names the first op or tensor it cannot make static."""
    sg = model.subgraphs[0]
    shape: dict[int, tuple] = {}
    value: dict[int, np.ndarray] = {}
    for t in sg.tensors:
        if mio.is_constant(t):
            shape[id(t)] = t.shape
            if t.dtype in (mio.INT32, schema.TensorType.INT64):
                value[id(t)] = mio.const(t).astype(np.int64)
    for t in sg.inputs:
        sig = list(mio.shape_signature(t))
        if any(d < 0 for d in sig[1:]):
            raise ConversionError(f"input tensor {mio.tensor_name(t)!r} has free dimensions "
                                  f"besides the batch {sig}; only the batch can be fixed")
        shape[id(t)] = tuple([1] + sig[1:]) if sig else ()
    kept, folded = [], 0
    for i, op in enumerate(sg.operators):
        ins = [t for t in op.inputs if t is not None]
        missing = [t for t in ins if id(t) not in shape]
        if missing:
            raise ConversionError(f"{_where(i, op)}: the shape of its input "
                                  f"{mio.tensor_name(missing[0])!r} is unknown")
        if op.opcode in FOLDABLE and all(id(t) in value or op.opcode == B.SHAPE for t in ins):
            out = op.outputs[0]
            v = _fold(i, op, ins, shape, value)
            value[id(out)], shape[id(out)] = v, v.shape
            folded += 1
            continue
        for out, s in zip(op.outputs, _infer(i, op, ins, shape, value)):
            shape[id(out)] = tuple(int(d) for d in s)
        kept.append(op)
    sg.operators = kept
    _write_back(sg, shape, value)
    _drop_flattening_reshapes(sg)
    mio.prune(model)
    return folded


def _fold(i, op, ins, shape, value) -> np.ndarray:
    o = mio.builtin_options(op)
    if op.opcode == B.SHAPE:
        return np.asarray(shape[id(ins[0])], np.int64)
    a = [value[id(t)] for t in ins]
    if op.opcode == B.GATHER:
        if getattr(o, "axis", 0) not in (0, None) or a[0].ndim != 1:
            raise ConversionError(f"{_where(i, op)}: only a 1-D gather of a shape folds")
        return a[0][a[1]]
    if op.opcode == B.REDUCE_PROD:
        keep = bool(getattr(o, "keepDims", False))
        return np.prod(a[0], axis=tuple(np.atleast_1d(a[1]).tolist()), keepdims=keep)
    if op.opcode == B.PACK:
        return np.stack(a, axis=getattr(o, "axis", 0) or 0)
    if op.opcode == B.CONCATENATION:
        return np.concatenate([np.atleast_1d(x) for x in a], axis=getattr(o, "axis", 0) or 0)
    # STRIDED_SLICE on a 1-D shape vector
    x, begin, end, strides = a[0], int(a[1][0]), int(a[2][0]), int(a[3][0])
    if x.ndim != 1 or len(a[1]) != 1:
        raise ConversionError(f"{_where(i, op)}: only a 1-D slice of a shape folds")
    if o.beginMask & 1:
        begin = 0 if strides > 0 else len(x) - 1
    if o.endMask & 1:
        end = len(x) if strides > 0 else -len(x) - 1
    out = x[slice(begin, end, strides)]
    return out[0] if o.shrinkAxisMask & 1 else out


def _infer(i, op, ins, shape, value) -> list[tuple]:
    """Output shapes of a kept op from its inputs' shapes."""
    s = [shape[id(t)] for t in ins]
    o = mio.builtin_options(op)
    if op.opcode == B.RESHAPE:
        target = value.get(id(ins[1])) if len(ins) > 1 else None
        if target is None and o is not None and o.newShape is not None:
            target = np.asarray(o.newShape)
        if target is None:
            raise ConversionError(f"{_where(i, op)}: its new shape is not a constant at batch 1")
        target = [int(d) for d in np.atleast_1d(target)]
        n = int(np.prod(s[0]))
        if target.count(-1) == 1:
            known = int(np.prod([d for d in target if d != -1]))
            target[target.index(-1)] = n // known
        if int(np.prod(target)) != n:
            raise ConversionError(f"{_where(i, op)}: cannot reshape {s[0]} to {target}")
        return [tuple(target)]
    if op.opcode == B.FULLY_CONNECTED:
        units, features = s[1][0], s[1][1]
        if o is not None and o.keepNumDims:
            return [s[0][:-1] + (units,)]
        return [(int(np.prod(s[0])) // features, units)]
    if op.opcode in ELEMENTWISE:
        return [np.broadcast_shapes(*s)]
    if op.opcode in (B.MEAN, B.SUM):
        axes = {int(a) % len(s[0]) for a in np.atleast_1d(value[id(ins[1])])}
        keep = bool(o.keepDims) if o is not None else False
        return [tuple(1 if k in axes else d for k, d in enumerate(s[0]) if keep or k not in axes)]
    if op.opcode == B.TRANSPOSE:
        return [tuple(s[0][int(k)] for k in value[id(ins[1])])]
    if op.opcode == B.BATCH_MATMUL:
        x, y = list(s[0]), list(s[1])
        if o is not None and o.adjX:
            x[-2:] = x[-1], x[-2]
        if o is not None and o.adjY:
            y[-2:] = y[-1], y[-2]
        return [np.broadcast_shapes(tuple(x[:-2]), tuple(y[:-2])) + (x[-2], y[-1])]
    if op.opcode in BATCH_FIRST:
        return [(1,) + tuple(t.shape[1:]) for t in op.outputs]
    raise ConversionError(f"{_where(i, op)}: cannot make a free-batch model static through "
                          "this op; export the model at batch 1 (keras.Input(..., batch_size=1))")


def _write_back(sg, shape, value) -> None:
    for t in sg.tensors:
        if id(t) not in shape:
            continue  # only read by folded ops: pruned
        if id(t) in value and not mio.is_constant(t):  # a folded shape: now a constant
            v = value[id(t)]
            data = v.astype(np.int64 if t.dtype == schema.TensorType.INT64 else np.int32)
            t.buffer = me.Buffer(data=data.tobytes())
        t.shape = shape[id(t)]
        mio.drop_shape_signature(t)
    for op in sg.operators:
        if op.opcode == B.RESHAPE and mio.builtin_options(op) is not None \
                and len(op.inputs) > 1 and op.inputs[1] is not None:
            mio.builtin_options(op).newShape = [int(d) for d in op.outputs[0].shape]


def _drop_flattening_reshapes(sg) -> None:
    """RESHAPE(x: (..., n, f) -> (rows, f)) -> FULLY_CONNECTED -> RESHAPE(-> (..., n, units))
    becomes FULLY_CONNECTED(x, keep_num_dims) writing the second RESHAPE's output."""
    outputs = {id(t) for t in sg.outputs}

    drop = set()
    for op in sg.operators:
        if op.opcode != B.FULLY_CONNECTED or mio.builtin_options(op) is None:
            continue
        flat = op.inputs[0]
        r1 = next((p for p in sg.operators if any(u is flat for u in p.outputs)), None)
        if (r1 is None or r1.opcode != B.RESHAPE or id(flat) in outputs
                or len(mio.consumers(sg, flat)) != 1):
            continue
        x = r1.inputs[0]
        if x.shape[-1:] != flat.shape[-1:]:
            continue
        out = op.outputs[0]
        after = mio.consumers(sg, out)
        if id(out) in outputs or len(after) != 1 or after[0].opcode != B.RESHAPE:
            continue
        r2 = after[0]
        units = out.shape[-1]
        if r2.outputs[0].shape != tuple(x.shape[:-1]) + (units,):
            continue
        op.inputs[0] = x
        op.outputs[0] = r2.outputs[0]
        mio.builtin_options(op).keepNumDims = True
        drop.update((id(r1), id(r2)))
    sg.operators = [op for op in sg.operators if id(op) not in drop]
