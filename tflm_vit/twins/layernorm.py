"""Integer LayerNorm (tv_layernorm_s8): parameters, NumPy reference, float reference.

See custom_ops/kernels/tv_layernorm.h for the arithmetic. The square root runs a fixed
number of Newton iterations; DEFAULT_SQRT_ITERATIONS comes from the measured table in
bench/results/isqrt_iterations.md (bench/isqrt_iterations.py)."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflm_vit.twins.fixed_point import (clamp_s8, dequantize, isqrt_newton, quantize,
                                      quantize_multipliers, requantize)

DEFAULT_SQRT_ITERATIONS = 3  # bench/results/isqrt_iterations.md: 3 reach the floor-sqrt error
FRACTION_BITS = 8  # extra output fraction bits so beta is added before rounding


@dataclasses.dataclass(frozen=True)
class LayerNormParams:
    channels: int
    output_zero_point: int
    eps_term: int
    sqrt_iterations: int
    multipliers: np.ndarray  # int32 [channels], signed
    shifts: np.ndarray
    bias: np.ndarray         # int32 [channels]

    def requant_table(self) -> np.ndarray:
        return np.stack([self.multipliers, self.shifts]).astype(np.int32)


def make_layernorm(gamma, beta, eps: float, input_scale: float, output_scale: float,
                   output_zero_point: int,
                   sqrt_iterations: int = DEFAULT_SQRT_ITERATIONS) -> LayerNormParams:
    gamma = np.asarray(gamma, np.float64).ravel()
    d = gamma.size
    beta = np.zeros(d) if beta is None else np.broadcast_to(np.asarray(beta, np.float64).ravel(), (d,))
    real = gamma * np.sqrt(d) * 2.0**FRACTION_BITS / (output_scale * 2.0**30)
    if np.any(np.abs(real) >= 1.0):
        raise ValueError("LayerNorm gamma too large for the output scale: "
                         f"max |gamma| {np.abs(gamma).max():.4g}, output scale {output_scale:.4g}")
    mult, shift = quantize_multipliers(real)
    bias = np.round(beta * 2.0**FRACTION_BITS / output_scale)
    if np.any(np.abs(bias) >= 2**30):
        raise ValueError("LayerNorm beta too large for the output scale")
    eps_term = int(round(float(d) ** 3 * eps / input_scale**2))
    return LayerNormParams(d, int(output_zero_point), eps_term, int(sqrt_iterations), mult,
                           shift, bias.astype(np.int32))


def layernorm_ref(x: np.ndarray, p: LayerNormParams) -> np.ndarray:
    """x: int8 [tokens, channels]."""
    d = x.shape[1]
    xs = x.astype(np.int64)
    total = xs.sum(axis=1, keepdims=True)
    dev = d * xs - total
    ss = (dev * dev).sum(axis=1)
    r = isqrt_newton(ss.astype(np.uint64) + np.uint64(p.eps_term), p.sqrt_iterations)
    r = r.astype(np.int64)[:, None]
    inv = np.where(r > 0, (np.int64(1) << 62) // np.maximum(r, 1), 0)
    norm = (dev * inv + (1 << 31)) >> 32
    fine = requantize(norm, p.multipliers, p.shifts) + p.bias
    return clamp_s8(p.output_zero_point + ((fine + 128) >> 8))


def layernorm_float(x, gamma, beta, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps) * gamma
    return y if beta is None else y + beta


def layernorm_float_then_quantize(xq, input_scale, input_zero_point, gamma, beta, eps,
                                  output_scale, output_zero_point) -> np.ndarray:
    x = dequantize(xq, input_scale, input_zero_point)
    return quantize(layernorm_float(x, gamma, beta, eps), output_scale, output_zero_point)
