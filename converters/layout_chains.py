"""TRANSPOSE and RESHAPE chains that move no element made one RESHAPE, on the way into
`convert`.

PyTorch models keep NCHW: a patch embedding's [1, H, W, D] output goes to [1, D, H, W]
(TRANSPOSE), [1, D, H·W] (RESHAPE) and [1, H·W, D] (TRANSPOSE), which leaves every
element where a RESHAPE [1, H, W, D] -> [1, H·W, D] puts it. A chain is such a no-op
when pushing the element indices 0..n-1 through it gives them back in order; it is
then one RESHAPE from the chain's input to its output tensor (both kernels copy bytes
and keep the quantisation, so this is bit for bit), which is the form the patterns
(converters/patterns.py) read. Chains with no TRANSPOSE are left as written.
"""

from __future__ import annotations

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflm_vit.converters import model_io as mio

B = schema.BuiltinOperator
_LAYOUT = (B.TRANSPOSE, B.RESHAPE)


def _apply(op: me.Operator, a: np.ndarray) -> np.ndarray | None:
    out = tuple(op.outputs[0].shape)
    if op.opcode == B.RESHAPE:
        return a.reshape(out) if a.size == int(np.prod(out)) else None
    perm = mio.const(op.inputs[1]) if mio.is_constant(op.inputs[1]) else None
    if perm is None or len(perm) != a.ndim:
        return None
    return np.transpose(a, [int(p) for p in perm])


def _chain(sg, first: me.Operator, ends: set[int]) -> list[me.Operator]:
    """The longest run of layout ops from `first`, each the only reader of the one
    before's output (no graph output in between)."""
    chain = [first]
    while id(chain[-1].outputs[0]) not in ends:
        after = mio.consumers(sg, chain[-1].outputs[0])
        if len(after) != 1 or after[0].opcode not in _LAYOUT \
                or after[0].inputs[0] is not chain[-1].outputs[0]:
            break
        chain.append(after[0])
    return chain


def _no_move_prefix(chain: list[me.Operator]) -> int:
    """How many ops of the chain's start move no element (0 when none with a TRANSPOSE)."""
    x = chain[0].inputs[0]
    a = np.arange(int(np.prod(x.shape))).reshape(tuple(x.shape))
    best = 0
    for k, op in enumerate(chain, 1):
        a = _apply(op, a)
        if a is None:
            break
        if (np.array_equal(a.ravel(), np.arange(a.size))
                and any(o.opcode == B.TRANSPOSE for o in chain[:k])):
            best = k
    return best


def collapse_layout_chains(model: me.Model) -> int:
    """Replaces each no-op TRANSPOSE/RESHAPE chain by one RESHAPE in place; returns how
    many chains."""
    sg = model.subgraphs[0]
    ends = {id(t) for t in sg.outputs}
    done, dropped, new = 0, set(), {}
    for op in sg.operators:  # in order: the first no-op chain from each op is taken
        if op.opcode not in _LAYOUT or id(op) in dropped:
            continue
        chain = _chain(sg, op, ends)
        k = _no_move_prefix(chain)
        if k == 0:
            continue
        x, y = chain[0].inputs[0], chain[k - 1].outputs[0]
        shape = mio.new_const(f"{mio.tensor_name(y)}/shape", np.array(y.shape, np.int32))
        new[id(chain[0])] = me.Operator(opcode=B.RESHAPE, inputs=[x, shape], outputs=[y])
        dropped |= {id(o) for o in chain[1:k]}
        done += 1
    if done:
        sg.operators = [new.get(id(op), op) for op in sg.operators if id(op) not in dropped]
        mio.prune(model)
    return done
