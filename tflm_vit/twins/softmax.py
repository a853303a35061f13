"""Integer softmax over rows of int32 scores (tv_softmax_row_q15): NumPy reference and
float reference."""

from __future__ import annotations

import numpy as np

from tflm_vit.twins.fixed_point import INT32_MIN, exp_q16_to_q30, requantize


def softmax_rows_q15_ref(scores: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """scores: int32 [rows, n] -> Q15 probabilities (int64 array, 1.0 = 32768)."""
    s = scores.astype(np.int64)
    diff = np.maximum(s - s.max(axis=1, keepdims=True), INT32_MIN)
    e = exp_q16_to_q30(requantize(diff, multiplier, shift))
    total = e.sum(axis=1, keepdims=True)
    inv = (np.int64(1) << 62) // total
    return (e * inv + (np.int64(1) << 46)) >> 47


def softmax_float(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
