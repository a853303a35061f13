"""Which op outputs may occupy their input's bytes (token overwriting), and where.

An op declares, per (input, output) pair, where its output may start relative to that
input: `lead` bytes before it (0: at the same byte). The kernel reads every byte before
anything overwrites it. The planner uses a pair only when the input is not read by any
later op. Everything else must never share bytes with a buffer alive at the same time.

- TV_LINEAR, TV_LOW_RANK_LINEAR, TV_MLP, TV_LAYERNORM, TV_GELU: output over input 0; the
  kernels walk tokens forward when the output is no longer than the input and backward
  otherwise, through a row buffer in scratch (custom_ops/kernels/tv_tokenwise.c).
- TV_ATTENTION: output over q (input 0); each query row is read into scratch first, and
  row i of the output only ever overwrites row i of q.
- TV_PATCH_EMBED: output over the image, starting the op's `output_lead` option bytes
  before it, when the converter found room (tflm_vit/twins/patch_embed.py).
- Stock elementwise ops (ELEMENTWISE): output over any input of the output's shape and
  element size. Every TFLM kernel of theirs on every target we model reads element i
  before it writes element i, and never reads an element j < i again: ADD and MUL (the
  reference loops; their broadcast paths index the full-shape input by the output's
  own index; CMSIS-NN's arm_elementwise_{add,mul}_s8 read four elements of each input
  before writing those four), LOGISTIC, TANH, HARD_SWISH, RELU, RELU6 (one loop over
  the flat size) and QUANTIZE between types of one width (Requantize's loop).
- RESHAPE: output over its input; TFLM's kernel copies nothing when both are the same
  bytes (reshape.cc: `if (input->data.raw != output->data.raw) memcpy(...)`), so
  chains run through it.
"""

from __future__ import annotations

from typing import NamedTuple

from tflm_vit import ops
from tflm_vit.memory.scratch import our_options
from tflm_vit.twins.patch_embed import NO_OVERWRITE
from tflm_vit.tflite_model import ModelInfo, OpInfo

# Each op of ours declares its rule (tflm_vit/ops: OpSpec.overwrite).
TOKENWISE = frozenset(s.code for s in ops.ALL if s.overwrite == ops.OVER_INPUT0)
AT_LEAD = frozenset(s.code for s in ops.ALL if s.overwrite == ops.OVER_IMAGE_AT_LEAD)
# Read from TFLM's kernels at 90b983c2 (reference and cmsis_nn). Planned and run with the
# stock model's output: model_zoo.op_sampler's RELU, RELU6, HARD_SWISH, MUL, TANH and
# RESHAPE on the wheel and the emulated M4/M7, ADD in the MobileNets and ResNet-8
# (bench/any_model.py), QUANTIZE and LOGISTIC in tests/test_any_model.py's own graph.
ELEMENTWISE = frozenset({"ADD", "MUL", "LOGISTIC", "TANH", "HARD_SWISH", "RELU", "RELU6",
                         "QUANTIZE"})


class Overwrite(NamedTuple):
    src: int  # the input tensor
    dst: int  # the output tensor
    lead: int  # the output starts this many bytes before the input (a multiple of 16)


def inplace_pairs(info: ModelInfo, op: OpInfo) -> list[Overwrite]:
    """The overwrites the op allows, best first."""
    if len(op.outputs) != 1:
        return []
    out = op.outputs[0]
    if op.name in TOKENWISE and op.inputs and op.inputs[0] >= 0:
        return [Overwrite(op.inputs[0], out, 0)]
    if op.name in AT_LEAD and op.inputs and op.inputs[0] >= 0:
        lead = our_options(info, op)["output_lead"]
        return [] if lead == NO_OVERWRITE else [Overwrite(op.inputs[0], out, lead)]
    o = info.tensors[out]
    if op.name in ELEMENTWISE:
        return [Overwrite(t, out, 0) for t in op.inputs
                if t >= 0 and not info.tensors[t].is_constant
                and info.tensors[t].nbytes == o.nbytes
                and _same_elements(info.tensors[t].shape, o.shape)]
    if op.name == "RESHAPE":  # input 1, if any, is the new shape
        t = op.inputs[0]
        return [Overwrite(t, out, 0)] if t >= 0 and not info.tensors[t].is_constant else []
    return []


def handoffs(info: ModelInfo, op: OpInfo, scopes: dict) -> list[Overwrite]:
    """The overwrites of `inplace_pairs` that can really happen: the input is read by no
    later op and the output is born at this op (scopes: lifetimes.tensor_scopes)."""
    s = op.index + 1
    return [w for w in inplace_pairs(info, op)
            if w.src in scopes and w.dst in scopes and scopes[w.src][1] == s
            and scopes[w.dst][0] == s]


def shared_bytes(src_size: int, dst_size: int, lead: int) -> int:
    """Bytes an input and an output share when the output starts `lead` bytes before
    the input."""
    return max(0, min(src_size, dst_size - lead))


def _same_elements(a: tuple, b: tuple) -> bool:
    """Same shape up to leading 1s (ADD of [1, N, D] and [N, D] is elementwise)."""
    strip = lambda s: tuple(s[next((i for i, d in enumerate(s) if d != 1), len(s)):])  # noqa
    return strip(a) == strip(b)
