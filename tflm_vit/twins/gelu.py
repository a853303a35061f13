"""GELU on int8: the 256-entry table (tv_lut_s8) from the exact float GELU, and the
integer x * sigmoid(1.702 x) approximation (tv_gelu_shift_s8), each with its NumPy
reference; the float reference is the exact erf GELU, or its tanh form where the model
asks for it (TFLite's GELU op with approximate=True, Keras' gelu(approximate=True))."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from tflm_vit.twins.fixed_point import (clamp_s8, dequantize, exp_q16_to_q30, quantize,
                                      quantize_multiplier, requantize)

_erf = np.vectorize(math.erf)


def gelu_float(x, approximate: bool = False) -> np.ndarray:
    """Exact GELU, x * Phi(x); approximate: the tanh form
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    x = np.asarray(x, np.float64)
    if approximate:
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_table(input_scale, input_zero_point, output_scale, output_zero_point,
               approximate: bool = False) -> np.ndarray:
    """int8[256]: entry q + 128 = quantize(gelu(dequantize(q)))."""
    q = np.arange(-128, 128)
    return quantize(gelu_float(dequantize(q, input_scale, input_zero_point), approximate),
                    output_scale, output_zero_point)


def lut_ref(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    return table[x.astype(np.int64) + 128]


@dataclasses.dataclass(frozen=True)
class GeluShiftParams:
    input_zero_point: int
    output_zero_point: int
    to_q16: tuple[int, int]
    to_out: tuple[int, int]


def make_gelu_shift(input_scale, input_zero_point, output_scale,
                    output_zero_point) -> GeluShiftParams:
    return GeluShiftParams(int(input_zero_point), int(output_zero_point),
                           quantize_multiplier(1.702 * input_scale * 2.0**16),
                           quantize_multiplier(input_scale / (output_scale * 2.0**22)))


def gelu_shift_ref(x: np.ndarray, p: GeluShiftParams) -> np.ndarray:
    xi = x.astype(np.int64) - p.input_zero_point
    z = requantize(xi, *p.to_q16)
    e = exp_q16_to_q30(-np.abs(z))
    pos = (np.int64(1) << 60) // ((np.int64(1) << 30) + e)
    sig = np.where(z >= 0, pos, (np.int64(1) << 30) - pos)
    sig_q22 = (sig + 128) >> 8
    return clamp_s8(requantize(xi * sig_q22, *p.to_out) + p.output_zero_point)
