"""Patch embedding written over its image (tv_patch_embed_s8): NumPy reference (a plain
strided convolution; neither the order nor the overwrite may change a bit), the order
the kernel computes tokens in, and where its output may start so that it overwrites
only image bytes already read.

The layout is this module's to compute: the converter writes it into the op's options
(`first_band_split`, `output_lead`), the kernel follows it and refuses any other
overlap, and the planner, the plan checker and the lower bound read it from there.
"""

from __future__ import annotations

import numpy as np

from tflm_vit.twins.fixed_point import clamp_s8, requantize

NO_OVERWRITE = -1  # TV_PATCH_EMBED_NO_OVERWRITE
ALIGN = 16  # TFLM places buffers at 16-byte multiples, so a lead is one too


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


def token_order(grid_h: int, grid_w: int, first_band_split: int) -> np.ndarray:
    """Token indices in the order the kernel computes them (tv_patch_embed.h)."""
    first = list(range(first_band_split)) + list(range(grid_w - 1, first_band_split - 1, -1))
    return np.array(first + list(range(grid_w, grid_h * grid_w)), dtype=np.int64)


def _reader_steps(height, width, channels, patch, order) -> np.ndarray:
    """For each run of patch * channels image bytes (one patch row of one token), the
    step at which the kernel reads it."""
    grid_w = width // patch
    step_of = np.empty(len(order), np.int64)
    step_of[order] = np.arange(len(order))
    rows = np.arange(height)[:, None] // patch * grid_w + np.arange(grid_w)[None, :]
    return step_of[rows.reshape(-1)]


def _safe(readers, order, run, d, lead) -> bool:
    """True when, with the output starting `lead` bytes before the image and tokens
    computed in `order`, no token is written over image bytes a later token still reads
    (`readers`: the step reading each run of `run` image bytes)."""
    image_bytes = len(readers) * run
    starts = order * d - lead  # each token's output, in image byte coordinates
    ends = np.minimum(starts + d, image_bytes)
    starts = np.maximum(starts, 0)
    hit = starts < ends
    if not hit.any():
        return True
    first, last = starts[hit] // run, (ends[hit] - 1) // run
    width = int((last - first).max()) + 1
    runs = first[:, None] + np.arange(width)[None, :]
    valid = runs <= last[:, None]
    read_at = np.where(valid, readers[np.minimum(runs, len(readers) - 1)], -1)
    steps = np.arange(len(order))[hit]
    return bool((read_at.max(axis=1) <= steps).all())


def overwrite_layout(height: int, width: int, channels: int, patch: int,
                     out_channels: int) -> tuple[int, int]:
    """(first_band_split, output_lead) giving the smallest arena while the op runs: the
    least lead (a multiple of 16) over every split, found by checking each candidate
    exactly. output_lead is NO_OVERWRITE when out_channels >= patch^2 * channels (a
    row of tokens is larger than the image rows it comes from) or when no lead short of
    the whole output would save a byte."""
    grid_h, grid_w = height // patch, width // patch
    out_bytes = grid_h * grid_w * out_channels
    if out_channels >= patch * patch * channels:
        return 0, NO_OVERWRITE
    best = (0, NO_OVERWRITE)
    limit = -(-out_bytes // ALIGN) * ALIGN  # from here on the output lies before the image
    for split in range(grid_w + 1):
        order = token_order(grid_h, grid_w, split)
        readers = _reader_steps(height, width, channels, patch, order)
        for lead in range(0, limit, ALIGN):
            if _safe(readers, order, patch * channels, out_channels, lead):
                best, limit = (split, lead), lead
                break
    return best

