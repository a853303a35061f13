"""Which op outputs may occupy their input's bytes (token overwriting), and where.

An op declares, per (input, output) pair, that its output may start exactly where that
input starts: the kernel reads each token (or element) before anything overwrites it.
The planner uses a pair only when the input is not read by any later op. Everything
else must never share bytes with a buffer alive at the same time.

- TV_LINEAR, TV_LOW_RANK_LINEAR, TV_MLP, TV_LAYERNORM, TV_GELU: output over input 0; the
  kernels walk tokens forward when the output is no longer than the input and backward
  otherwise, through a row buffer in scratch (custom_ops/kernels/tv_tokenwise.c).
- TV_ATTENTION: output over q (input 0); each query row is read into scratch first, and
  row i of the output only ever overwrites row i of q.
- ADD (elementwise): output over any input of the same shape; element i is read before
  it is written.
"""

from __future__ import annotations

from tflm_vit.tflite_model import ModelInfo, OpInfo

TOKENWISE = frozenset({"TV_LINEAR", "TV_LOW_RANK_LINEAR", "TV_MLP", "TV_LAYERNORM",
                       "TV_GELU", "TV_ATTENTION"})
ELEMENTWISE = frozenset({"ADD"})


def inplace_pairs(info: ModelInfo, op: OpInfo) -> list[tuple[int, int]]:
    """(input tensor, output tensor) pairs whose bytes the op may share, best first."""
    if len(op.outputs) != 1:
        return []
    out = op.outputs[0]
    if op.name in TOKENWISE and op.inputs and op.inputs[0] >= 0:
        return [(op.inputs[0], out)]
    if op.name in ELEMENTWISE:
        shape = info.tensors[out].shape
        return [(t, out) for t in op.inputs
                if t >= 0 and not info.tensors[t].is_constant
                and _same_elements(info.tensors[t].shape, shape)]
    return []


def handoffs(info: ModelInfo, op: OpInfo, scopes: dict) -> list[tuple[int, int]]:
    """The pairs of `inplace_pairs` that can really share bytes: the input is read by no
    later op and the output is born at this op (scopes: lifetimes.tensor_scopes)."""
    s = op.index + 1
    return [(src, dst) for src, dst in inplace_pairs(info, op)
            if src in scopes and dst in scopes and scopes[src][1] == s and scopes[dst][0] == s]


def _same_elements(a: tuple, b: tuple) -> bool:
    """Same shape up to leading 1s (ADD of [1, N, D] and [N, D] is elementwise)."""
    strip = lambda s: tuple(s[next((i for i, d in enumerate(s) if d != 1), len(s)):])  # noqa
    return strip(a) == strip(b)
