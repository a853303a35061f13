"""Decomposed patch embedding (tv_patch_embed_s8): NumPy reference (a plain strided
convolution; the decomposition must not change a bit) and scratch sizes."""

from __future__ import annotations

import numpy as np

from tflm_vit.ops.fixed_point import clamp_s8, requantize


def patch_embed_ref(image, weights, bias, multipliers, shifts, input_offset,
                    output_offset) -> np.ndarray:
    """image int8 [H, W, C], weights int8 [D, P, P, C] -> int8 [(H/P)(W/P), D]."""
    h, w, c = image.shape
    d, p = weights.shape[0], weights.shape[1]
    patches = (image.astype(np.int64) + input_offset).reshape(h // p, p, w // p, p, c)
    patches = patches.transpose(0, 2, 1, 3, 4).reshape(-1, p * p * c)
    acc = patches @ weights.reshape(d, -1).astype(np.int64).T
    if bias is not None:
        acc = acc + bias
    return clamp_s8(requantize(acc, multipliers, shifts) + output_offset)


def scratch_bytes(out_channels: int, in_channels: int, sub_patch: int) -> int:
    """Bytes tv_patch_embed_scratch_size asks for."""
    return 4 * out_channels + sub_patch * sub_patch * in_channels


def im2col_bytes(out_channels: int, in_channels: int, patch: int) -> int:
    """The whole-patch im2col alternative, for comparison."""
    return 4 * out_channels + patch * patch * in_channels


def default_sub_patch(patch: int) -> int:
    """The largest of 4, 2, 1 that divides the patch and is smaller than it (1 for a
    patch of 1): scratch shrinks by (patch / sub)^2 against whole-patch im2col."""
    return next(s for s in (4, 2, 1) if patch % s == 0 and (s < patch or s == 1))
