"""Fused attention (tv_attention_s8): parameters, NumPy reference, float reference.

Scores are exact int32 dot products of (q - zq) and (k - zk); the softmax runs on their
real values (scale s_q s_k * attention scale) in fixed point, and the Q15 probabilities
weight (v - zv) into an int32 sum requantised to the output scale."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflm_vit.twins.fixed_point import clamp_s8, quantize_multiplier, requantize
from tflm_vit.twins.softmax import softmax_float, softmax_rows_q15_ref


@dataclasses.dataclass(frozen=True)
class AttentionParams:
    heads: int
    q_offset: int
    k_offset: int
    v_offset: int
    score_to_q16: tuple[int, int]
    out_multiplier: tuple[int, int]
    output_offset: int


def make_attention(heads, q_quant, k_quant, v_quant, attention_scale, out_quant) -> AttentionParams:
    """*_quant are (scale, zero_point) pairs; attention_scale multiplies q.k."""
    return AttentionParams(
        int(heads), -int(q_quant[1]), -int(k_quant[1]), -int(v_quant[1]),
        quantize_multiplier(q_quant[0] * k_quant[0] * attention_scale * 2.0**16),
        quantize_multiplier(v_quant[0] / (out_quant[0] * 2.0**15)), int(out_quant[1]))


def attention_ref(q, k, v, p: AttentionParams) -> np.ndarray:
    """q, k, v: int8 [tokens, heads * head_dim] -> int8 [tokens, heads * head_dim]."""
    n, width = q.shape
    dh = width // p.heads
    out = np.empty((n, width), np.int8)
    for h in range(p.heads):
        cols = slice(h * dh, (h + 1) * dh)
        qh = q[:, cols].astype(np.int64) + p.q_offset
        kh = k[:, cols].astype(np.int64) + p.k_offset
        vh = v[:, cols].astype(np.int64) + p.v_offset
        probs = softmax_rows_q15_ref(qh @ kh.T, *p.score_to_q16)
        acc = probs @ vh
        out[:, cols] = clamp_s8(requantize(acc, *p.out_multiplier) + p.output_offset)
    return out


def attention_float(q, k, v, heads: int, attention_scale: float) -> np.ndarray:
    n, width = q.shape
    dh = width // heads
    out = np.empty((n, width))
    for h in range(heads):
        cols = slice(h * dh, (h + 1) * dh)
        out[:, cols] = softmax_float(q[:, cols] @ k[:, cols].T * attention_scale) @ v[:, cols]
    return out
