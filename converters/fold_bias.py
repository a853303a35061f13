"""Bias ADDs folded into the FULLY_CONNECTED they follow, on the way into `convert`.

Exported through `TFLiteConverter.from_keras_model` with a free batch, Keras'
MultiHeadAttention keeps each projection's bias as a separate int8 ADD after the head
split: FULLY_CONNECTED (no bias) -> RESHAPE (tokens, heads, head_dim) -> ADD(constant
(heads, head_dim)). That hides the projection from the attention pattern. Folding the
constant into the FULLY_CONNECTED's int32 bias (scale = input scale x weight scale, as
TFLite quantises biases) and giving the FULLY_CONNECTED the ADD's output quantisation
removes one int8 rounding: the folded model may differ from the unfolded one by a
rounding step at those tensors (tests/test_foreign_vits.py bounds it at the logits).
"""

from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflm_vit.converters import model_io as mio

B = schema.BuiltinOperator


def fold_bias_adds(model: me.Model) -> int:
    """Folds every FULLY_CONNECTED (no bias) -> RESHAPE* -> ADD(constant bias) in place;
    returns how many."""
    sg = model.subgraphs[0]
    outputs = {id(t) for t in sg.outputs}

    drop, folded = set(), 0
    for fc in list(sg.operators):
        if fc.opcode != B.FULLY_CONNECTED or (len(fc.inputs) > 2 and fc.inputs[2] is not None):
            continue
        opts = mio.builtin_options(fc)
        if opts is not None and opts.fusedActivationFunction != 0:
            continue
        chain, t = [], fc.outputs[0]
        while True:
            after = mio.consumers(sg, t)
            if id(t) in outputs or len(after) != 1:
                after = []
                break
            if after[0].opcode != B.RESHAPE:
                break
            chain.append(after[0])
            t = after[0].outputs[0]
        if len(after) != 1 or after[0].opcode != B.ADD:
            continue
        add = after[0]
        consts = [u for u in add.inputs if mio.is_constant(u)]
        act = [u for u in add.inputs if not mio.is_constant(u)]
        units = fc.inputs[1].shape[0]
        if len(consts) != 1 or len(act) != 1 or mio.const(consts[0]).size != units \
                or mio.builtin_options(add) is not None \
                and mio.builtin_options(add).fusedActivationFunction != 0 \
                or tuple(consts[0].shape) != tuple(t.shape[-len(consts[0].shape):]):
            continue
        x, w = fc.inputs[0], fc.inputs[1]
        s_x, _ = mio.quant(x, "FULLY_CONNECTED input")
        bias_scales = s_x * mio.channel_scales(w, units)
        bias = np.round(mio.dequantized_const(consts[0]).reshape(units) / bias_scales)
        if np.abs(bias).max(initial=0) >= 2 ** 31:
            continue
        tensor = me.Tensor(shape=(units,), dtype=mio.INT32, data=bias.astype(np.int32),
                           name=f"{mio.tensor_name(w)}/folded_bias",
                           quantization=me.Quantization(scales=[float(s) for s in bias_scales],
                                                        zero_points=[0] * units, axis=0))
        if len(fc.inputs) > 2:
            fc.inputs[2] = tensor
        else:
            fc.inputs.append(tensor)
        q = add.outputs[0].quantization
        for u in [fc.outputs[0]] + [r.outputs[0] for r in chain]:
            u.quantization = me.Quantization(scales=list(np.atleast_1d(q.scales)),
                                             zero_points=list(np.atleast_1d(q.zero_points)))
        last = chain[-1] if chain else fc
        last.outputs[0] = add.outputs[0]
        drop.add(id(add))
        folded += 1
    sg.operators = [op for op in sg.operators if id(op) not in drop]
    if folded:
        mio.prune(model)
    return folded
