"""Writing the custom-options blob of our ops (format: custom_ops/kernels/tv_options.h).

One list of field names per op kind, in blob order; the C adapters read the same order."""

from __future__ import annotations

import struct

MAGIC = b"TVOP"
VERSION = 1

# custom_code -> (kind, field names). MLP fields are variable: see mlp_fields().
OPS = {
    "TV_LAYERNORM": (1, ("tokens", "channels", "output_zero_point", "eps_lo", "eps_hi",
                         "sqrt_iterations")),
    "TV_GELU": (2, ("mode", "input_zero_point", "output_zero_point", "q16_multiplier",
                    "q16_shift", "out_multiplier", "out_shift")),
    "TV_LINEAR": (3, ("tokens", "in_features", "out_features", "input_offset",
                      "output_offset")),
    "TV_LOW_RANK_LINEAR": (4, ("tokens", "in_features", "rank", "out_features",
                               "input_offset", "mid_zero_point", "output_offset")),
    "TV_ATTENTION": (5, ("tokens", "heads", "head_dim", "q_offset", "k_offset", "v_offset",
                         "score_multiplier", "score_shift", "out_multiplier", "out_shift",
                         "output_offset")),
    "TV_MLP": (6, None),
    "TV_PATCH_EMBED": (7, ("height", "width", "in_channels", "patch", "out_channels",
                           "first_band_split", "output_lead", "input_offset",
                           "output_offset")),
}

GELU_MODE_TABLE, GELU_MODE_SHIFT = 0, 1


def mlp_fields(up_count: int, down_count: int) -> tuple[str, ...]:
    names = ["tokens", "up_count", "down_count"]
    for i in range(up_count + down_count):
        names += [f"stage{i}_in", f"stage{i}_out", f"stage{i}_input_offset",
                  f"stage{i}_output_offset"]
    return tuple(names)


def field_names(op: str, fields: dict | None = None) -> tuple[str, ...]:
    kind, names = OPS[op]
    if names is None:
        return mlp_fields(fields["up_count"], fields["down_count"])
    return names


def split_int64(value: int) -> tuple[int, int]:
    """An int64 as (low, high) int32 words."""
    lo = value & 0xFFFFFFFF
    hi = (value >> 32) & 0xFFFFFFFF
    to_signed = lambda w: w - (1 << 32) if w >= 1 << 31 else w  # noqa: E731
    return to_signed(lo), to_signed(hi)


def pack(op: str, fields: dict) -> bytes:
    """fields: every name of the op, int32 values. Missing or extra names raise."""
    if op not in OPS:
        raise KeyError(f"unknown op {op!r}")
    names = field_names(op, fields)
    missing = [n for n in names if n not in fields]
    extra = [n for n in fields if n not in names]
    if missing or extra:
        raise KeyError(f"{op} options: missing {missing}, unexpected {extra}")
    values = [int(fields[n]) for n in names]
    for n, v in zip(names, values):
        if not -(2**31) <= v < 2**31:
            raise ValueError(f"{op} option {n} = {v} does not fit int32")
    return (MAGIC + struct.pack("<HHI", VERSION, OPS[op][0], len(values))
            + struct.pack(f"<{len(values)}i", *values))


def unpack(op: str, blob: bytes) -> dict:
    """Reads a blob back (the converter's own check, and for reports)."""
    if blob[:4] != MAGIC or len(blob) < 12:
        raise ValueError(f"{op} options: not a TVOP blob")
    version, kind, n = struct.unpack_from("<HHI", blob, 4)
    if version != VERSION or kind != OPS[op][0] or len(blob) != 12 + 4 * n:
        raise ValueError(f"{op} options: version {version}, kind {kind}, {len(blob)} bytes")
    values = struct.unpack_from(f"<{n}i", blob, 12)
    if op == "TV_MLP":
        names = mlp_fields(values[1], values[2])
    else:
        names = OPS[op][1]
    if len(names) != n:
        raise ValueError(f"{op} options: {n} fields, expected {len(names)}")
    return dict(zip(names, values))
