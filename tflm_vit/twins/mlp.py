"""Fused MLP (tv_mlp_s8): up stages, GELU table, down stages, per token. The NumPy
reference is the unfused chain, which the fused kernel equals exactly."""

from __future__ import annotations

import numpy as np

from tflm_vit.twins.gelu import lut_ref
from tflm_vit.twins.linear import Stage, linear_ref


def mlp_ref(x: np.ndarray, up: list[Stage], table: np.ndarray, down: list[Stage]) -> np.ndarray:
    for s in up:
        x = linear_ref(x, s)
    x = lut_ref(x, table)
    for s in down:
        x = linear_ref(x, s)
    return x
