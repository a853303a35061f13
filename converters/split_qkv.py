"""A fused qkv projection split into three, on the way into `convert`.

PyTorch ViTs (timm, through litert-torch) compute q, k and v with one linear of 3·W
outputs and cut it up: FULLY_CONNECTED -> RESHAPE (.., T, 3, H, d) -> TRANSPOSE (the 3
axis first) -> SLICE x3 (one index of that axis each). That hides the three projections
from the attention pattern. The same values come from three FULLY_CONNECTEDs, each with
its third of the weights and bias rows and the fused output's quantisation, each followed
by the RESHAPE (.., T, 1, H, d) and the TRANSPOSE the fused one had, writing the SLICE's
output tensor: bit for bit the model's own arithmetic (an int8 FULLY_CONNECTED computes
each output row on its own), with the split made where the attention pattern expects it.
"""

from __future__ import annotations

import copy

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflm_vit.converters import model_io as mio

B = schema.BuiltinOperator


def _part(t: me.Tensor, rows: slice, name: str) -> me.Tensor:
    """Rows of a constant (weights or bias), its per-row quantisation with them."""
    data = np.asarray(mio.const(t))[rows]
    q = t.quantization
    if q is not None and len(np.atleast_1d(q.scales)) > 1:
        q = me.Quantization(scales=list(np.atleast_1d(q.scales)[rows]),
                            zero_points=list(np.atleast_1d(q.zero_points)[rows]), axis=0)
    return me.Tensor(shape=data.shape, dtype=t.dtype, data=data, name=name, quantization=q)


def _fused(sg, fc):
    """(reshape, transpose, [(part index, slice op)]) when fc is a fused qkv projection."""
    outs = {id(t) for t in sg.outputs}
    after = mio.consumers(sg, fc.outputs[0])
    if len(after) != 1 or after[0].opcode != B.RESHAPE or id(fc.outputs[0]) in outs:
        return None
    reshape = after[0]
    shape = list(reshape.outputs[0].shape)
    if 3 not in shape[:-2]:
        return None
    axis = len(shape) - 3  # (.., T, 3, H, d): the 3 before heads and head dim
    if shape[axis] != 3 or shape[-3 + 1] * shape[-1] * 3 != fc.outputs[0].shape[-1]:
        return None
    after = mio.consumers(sg, reshape.outputs[0])
    if len(after) != 1 or after[0].opcode != B.TRANSPOSE:
        return None
    transpose = after[0]
    perm = mio.const(transpose.inputs[1])
    if perm is None or int(perm[0]) != axis:
        return None
    slices = mio.consumers(sg, transpose.outputs[0])
    parts = []
    for s in slices:
        begin, size = (mio.const(s.inputs[k]) if len(s.inputs) > k else None for k in (1, 2))
        if s.opcode != B.SLICE or begin is None or size is None or int(size[0]) != 1 \
                or any(int(b) for b in begin[1:]):
            return None
        parts.append((int(begin[0]), s))
    if sorted(p for p, _ in parts) != [0, 1, 2]:
        return None
    return reshape, transpose, parts


def split_fused_qkv(model: me.Model) -> int:
    """Splits every fused qkv projection in place; returns how many."""
    sg = model.subgraphs[0]
    new_ops, dropped, done = [], set(), 0
    for fc in list(sg.operators):
        found = _fused(sg, fc) if fc.opcode == B.FULLY_CONNECTED else None
        if found is None:
            new_ops.append(fc)
            continue
        reshape, transpose, parts = found
        dropped |= {id(reshape), id(transpose)} | {id(s) for _, s in parts}
        done += 1
        width = fc.outputs[0].shape[-1] // 3
        shape = list(reshape.outputs[0].shape)
        shape[len(shape) - 3] = 1
        name = mio.tensor_name(fc.outputs[0])
        for index, s in sorted(parts, key=lambda p: p[0]):
            rows = slice(index * width, (index + 1) * width)
            inputs = [fc.inputs[0], _part(fc.inputs[1], rows, f"{name}/w{index}")]
            if len(fc.inputs) > 2 and fc.inputs[2] is not None:
                inputs.append(_part(fc.inputs[2], rows, f"{name}/b{index}"))
            out = me.Tensor(shape=tuple(fc.outputs[0].shape[:-1]) + (width,),
                            dtype=fc.outputs[0].dtype, name=f"{name}/part{index}",
                            quantization=copy.deepcopy(fc.outputs[0].quantization))
            part_fc = me.Operator(opcode=B.FULLY_CONNECTED, inputs=inputs, outputs=[out])
            mio.copy_builtin_options(fc, part_fc)
            heads = me.Tensor(shape=tuple(shape), dtype=out.dtype, name=f"{name}/heads{index}",
                              quantization=copy.deepcopy(out.quantization))
            part_reshape = me.Operator(opcode=B.RESHAPE, outputs=[heads], inputs=[
                out, mio.new_const(f"{name}/shape{index}", np.array(shape, np.int32))])
            part_transpose = me.Operator(opcode=B.TRANSPOSE, inputs=[heads, transpose.inputs[1]],
                                         outputs=[s.outputs[0]])
            new_ops += [part_fc, part_reshape, part_transpose]
    if dropped:
        sg.operators = [op for op in new_ops if id(op) not in dropped]
        mio.prune(model)
    return done
