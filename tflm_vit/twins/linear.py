"""Linear, low-rank linear: integer parameters from the model's quantisation, the
NumPy reference of tv_linear_s8 / tv_low_rank_linear_s8, and the float reference.

A stage is bit-exact with TFLite's int8 FULLY_CONNECTED: acc = bias + sum w (x - zx),
out = clamp(requant(acc, s_x s_w[o] / s_y) + zy)."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflm_vit.twins.fixed_point import clamp_s8, quantize_multipliers, requantize


@dataclasses.dataclass(frozen=True)
class Stage:
    weights: np.ndarray      # int8 [out, in]
    bias: np.ndarray | None  # int32 [out]
    multipliers: np.ndarray  # int32 [out]
    shifts: np.ndarray       # int32 [out]
    input_offset: int        # minus the input zero point
    output_offset: int       # output zero point

    @property
    def in_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[0])

    def as_tuple(self) -> tuple:
        """The form tflm_vit._kernels takes."""
        return (self.weights, self.bias, self.multipliers, self.shifts, self.input_offset,
                self.output_offset)

    def requant_table(self) -> np.ndarray:
        """int32 [2, out]: multipliers, shifts (the op's requantisation tensor)."""
        return np.stack([self.multipliers, self.shifts]).astype(np.int32)


def make_stage(weights, bias, input_scale, input_zero_point, weight_scales, output_scale,
               output_zero_point) -> Stage:
    out = weights.shape[0]
    w_scales = np.broadcast_to(np.asarray(weight_scales, np.float64), (out,))
    mult, shift = quantize_multipliers(input_scale * w_scales / output_scale)
    return Stage(np.ascontiguousarray(weights, np.int8),
                 None if bias is None else np.asarray(bias, np.int32), mult, shift,
                 -int(input_zero_point), int(output_zero_point))


def linear_ref(x: np.ndarray, s: Stage) -> np.ndarray:
    """x: int8 [tokens, in] -> int8 [tokens, out]."""
    acc = (x.astype(np.int64) + s.input_offset) @ s.weights.astype(np.int64).T
    if s.bias is not None:
        acc = acc + s.bias
    return clamp_s8(requantize(acc, s.multipliers, s.shifts) + s.output_offset)


def low_rank_linear_ref(x: np.ndarray, u: Stage, v: Stage) -> np.ndarray:
    return linear_ref(linear_ref(x, u), v)


def linear_float(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    y = x @ weights.T
    return y if bias is None else y + bias
