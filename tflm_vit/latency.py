"""Instructions per op on a Cortex-M, predicted from the model's shapes: the latency model
the search takes next to SRAM and flash.

Each op is reduced to two features read from the model (no TFLM, no emulator):
`macs` (int8 multiply-accumulates) and `elements` (values produced or normalised, the
per-element work: requantisation, softmax's exponentials, LayerNorm, ADD). Per op kind
and per target, instructions = a * macs + b * elements + c, with a, b, c fitted by least
squares on instruction counts of whole models on the emulated CPU (bench/speed.py,
`python bench/speed.py --fit` rewrites tflm_vit/latency_coefficients.json and reports the
error of the fit and of leave-one-model-out predictions).

Counts are instructions, not cycles (see tflm_vit/firmware/instructions.py). Kinds the fit never saw
are predicted with the coefficients fitted over all kinds together, and marked so.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from tflm_vit import ops
from tflm_vit.errors import ModelFileError
from tflm_vit.memory.scratch import our_options
from tflm_vit.tflite_model import ModelInfo, OpInfo, parse_model, read_model_bytes

COEFFICIENTS = pathlib.Path(__file__).with_name("latency_coefficients.json")
FALLBACK = "*"  # the coefficients fitted over every op kind together


def _elements(info: ModelInfo, tensor: int) -> int:
    return int(np.prod(info.tensors[tensor].shape)) if tensor >= 0 else 0


def op_features(info: ModelInfo, op: OpInfo) -> tuple[int, int]:
    """(macs, elements) of one op."""
    out = _elements(info, op.outputs[0]) if op.outputs else 0
    if op.name in ops.BY_CODE:  # ours: each declares its features (tflm_vit/ops)
        return ops.BY_CODE[op.name].features(our_options(info, op), out)
    t = info.tensors
    if op.name == "FULLY_CONNECTED":
        return out * t[op.inputs[1]].shape[-1], out
    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        _, kh, kw, c = t[op.inputs[1]].shape
        return out * kh * kw * (c if op.name == "CONV_2D" else 1), out
    if op.name == "BATCH_MATMUL":
        return out * t[op.inputs[0]].shape[-1], out
    biggest_input = max((_elements(info, i) for i in op.inputs
                         if i >= 0 and not t[i].is_constant), default=0)
    return 0, max(out, biggest_input)


@dataclasses.dataclass(frozen=True)
class OpLatency:
    index: int
    name: str
    macs: int
    elements: int
    instructions: int
    fitted: bool  # False: this kind was never counted; the all-kinds fit stands in


@dataclasses.dataclass(frozen=True)
class LatencyPrediction:
    target: str
    ops: list[OpLatency]

    @property
    def instructions(self) -> int:
        return sum(o.instructions for o in self.ops)

    @property
    def macs(self) -> int:
        return sum(o.macs for o in self.ops)


def op_instructions(coefficients: list[float], macs: int, elements: int) -> int:
    """The model's prediction for one op: a * macs + b * elements + c, at least 0."""
    a, b, c = coefficients
    return max(0, round(a * macs + b * elements + c))


def _without_negative_intercept(coefficients: list[float]) -> list[float]:
    """The all-kinds fit for a kind never counted. Its intercept is negative (the fit is
    over large ops), which put a small op at 0 instructions: the stem CONV_2D of the
    F746 search's winner (14,112 MACs) was predicted 0 and counts 207,159 on the
    emulated M7 (CMSIS-NN). Without the intercept it predicts 238,000: an estimate
    that errs high for such ops rather than ignoring them."""
    a, b, c = coefficients
    return [a, b, max(c, 0.0)]


def coefficients(path: pathlib.Path = COEFFICIENTS) -> dict:
    """{target: {"kinds": {kind: [a, b, c]}, ...}} as bench/speed.py fitted them."""
    try:
        return json.loads(path.read_text())["targets"]
    except (OSError, ValueError, KeyError) as e:
        raise ModelFileError(f"{path}: no latency coefficients ({e}); "
                             "run python bench/speed.py --fit") from None


def targets() -> list[str]:
    return sorted(coefficients())


def predict_latency(model, target: str = "cortex-m7") -> LatencyPrediction:
    """Predicted instructions of one Invoke() of `model` (path or bytes) on `target`
    (a key of latency_coefficients.json: cortex-m7, cortex-m4)."""
    table = coefficients()
    if target not in table:
        raise ValueError(f"no latency model for target {target!r}; "
                         f"choose one of {', '.join(sorted(table))}")
    kinds = table[target]["kinds"]
    info = parse_model(read_model_bytes(model))
    ops = []
    for op in info.ops:
        macs, elements = op_features(info, op)
        fitted = op.name in kinds
        ops.append(OpLatency(op.index, op.name, macs, elements,
                             op_instructions(kinds[op.name] if fitted
                                             else _without_negative_intercept(kinds[FALLBACK]),
                                             macs, elements), fitted))
    return LatencyPrediction(target, ops)
