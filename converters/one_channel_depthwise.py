"""A depthwise convolution over one input channel made the convolution it is, on the
way into `convert`.

PyTorch's patch embedding (timm's `Conv2d(1, D, P, stride=P)` on a one-channel image,
through litert-torch) arrives as DEPTHWISE_CONV_2D with depth multiplier D: with a
single input channel, each of its D outputs is that channel convolved with one P x P
kernel, which is what CONV_2D with D output channels computes. The int8 arithmetic is
the same sum, bias and per-channel requantisation in both kernels (TFLM's reference and
CMSIS-NN), so the rewrite is bit for bit; the weights [1, P, P, D] become [D, P, P, 1]
and their per-channel quantisation moves from axis 3 to axis 0. The patch-embedding
pattern (converters/patterns.py) reads CONV_2D.
"""

from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflm_vit.converters import model_io as mio

B = schema.BuiltinOperator


def _one_channel(op: me.Operator) -> bool:
    if op.opcode != B.DEPTHWISE_CONV_2D or len(op.inputs) < 2:
        return False
    x, w = op.inputs[0], op.inputs[1]
    return (len(x.shape) == 4 and x.shape[3] == 1 and mio.is_constant(w)
            and w.dtype == mio.INT8 and len(w.shape) == 4 and w.shape[0] == 1)


def _conv_weights(w: me.Tensor) -> me.Tensor:
    data = np.ascontiguousarray(np.transpose(mio.const(w), (3, 1, 2, 0)))  # [D, P, P, 1]
    q = w.quantization
    if q is not None and len(np.atleast_1d(q.scales)) > 1:
        q = me.Quantization(scales=list(np.atleast_1d(q.scales)),
                            zero_points=list(np.atleast_1d(q.zero_points)), axis=0)
    return me.Tensor(shape=data.shape, dtype=w.dtype, data=data.tobytes(),
                     name=f"{mio.tensor_name(w)}/conv", quantization=q)


def depthwise_to_conv(model: me.Model) -> int:
    """Rewrites every one-input-channel DEPTHWISE_CONV_2D as CONV_2D in place; returns
    how many."""
    sg = model.subgraphs[0]
    done = 0
    for i, op in enumerate(sg.operators):
        if not _one_channel(op):
            continue
        o = mio.builtin_options(op)
        conv = me.Operator(opcode=B.CONV_2D, outputs=op.outputs,
                           inputs=[op.inputs[0], _conv_weights(op.inputs[1]), *op.inputs[2:]])
        c = schema.Conv2DOptionsT()
        c.padding, c.strideW, c.strideH = o.padding, o.strideW, o.strideH
        c.fusedActivationFunction = o.fusedActivationFunction
        c.dilationWFactor, c.dilationHFactor = o.dilationWFactor, o.dilationHFactor
        mio.set_builtin_options(conv, c, schema.BuiltinOptions.Conv2DOptions)
        sg.operators[i] = conv
        done += 1
    if done:
        mio.prune(model)
    return done
