"""Writing the custom-options blob of our ops (format: custom_ops/kernels/tv_options.h).

One list of field names per op kind, in blob order: the single definition of our ops'
kinds and fields. The C side reads them from custom_ops/kernels/tv_op_fields.h, which
is generated from this file (`python -m tflm_vit.twins.options --header PATH`) and
checked against it by the tests."""

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


MLP_HEAD = ("tokens", "up_count", "down_count")  # then MLP_STAGE per stage, up then down
MLP_STAGE = ("in", "out", "input_offset", "output_offset")


def mlp_fields(up_count: int, down_count: int) -> tuple[str, ...]:
    names = list(MLP_HEAD)
    for i in range(up_count + down_count):
        names += [f"stage{i}_{n}" for n in MLP_STAGE]
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


HEADER = "custom_ops/kernels/tv_op_fields.h"


def c_header() -> str:
    """tv_op_fields.h: the op kinds and each op's field positions, for the C side."""
    lines = [
        "// Generated from tflm_vit/twins/options.py (`python -m tflm_vit.twins.options",
        f"// --header {HEADER}`); do not edit: tests/test_options_header.py",
        "// checks it is current.",
        "// Our ops' kinds and the position of each custom-options field, in blob order.",
        "#ifndef TFLM_VIT_KERNELS_TV_OP_FIELDS_H_",
        "#define TFLM_VIT_KERNELS_TV_OP_FIELDS_H_",
        "",
        "typedef enum {",
    ]
    lines += [f"  TV_OP_{op[3:]} = {kind}," for op, (kind, _) in OPS.items()]
    lines += ["} tv_op_kind;", "", f"#define TV_OP_COUNT {len(OPS)}",
              f"#define TV_GELU_MODE_TABLE {GELU_MODE_TABLE}",
              f"#define TV_GELU_MODE_SHIFT {GELU_MODE_SHIFT}", ""]
    for op, (_, names) in OPS.items():
        if names is None:  # TV_MLP: a head, then one group per stage
            lines.append(_c_enum(op, MLP_HEAD, "FIELD_COUNT"))
            lines.append(_c_enum(f"{op}_STAGE", MLP_STAGE, "FIELD_COUNT"))
        else:
            lines.append(_c_enum(op, names, "FIELD_COUNT"))
    lines += ["", "#endif  // TFLM_VIT_KERNELS_TV_OP_FIELDS_H_", ""]
    return "\n".join(lines)


def _c_enum(prefix: str, names, count: str) -> str:
    items = [f"{prefix}_{n.upper()} = {i}" for i, n in enumerate(names)]
    items.append(f"{prefix}_{count} = {len(names)}")
    return "enum {\n" + "".join(f"  {item},\n" for item in items) + "};"


if __name__ == "__main__":
    import argparse
    import pathlib
    ap = argparse.ArgumentParser(description="write the C header of our ops' option fields")
    ap.add_argument("--header", required=True, help=f"output path (the repo's: {HEADER})")
    pathlib.Path(ap.parse_args().header).write_text(c_header())
