"""Writing the custom-options blob of our ops (format: custom_ops/kernels/tv_options.h).

Each op's kind and field names, in blob order, are declared once, in its module of
tflm_vit/ops. The C side reads them from custom_ops/kernels/tv_op_fields.h, which is
generated here (`python -m tflm_vit.twins.options --header PATH`) and checked against
it by the tests."""

from __future__ import annotations

import struct

from tflm_vit import ops
from tflm_vit.ops import gelu as _gelu
from tflm_vit.ops import mlp as _mlp

MAGIC = b"TVOP"
VERSION = 1

# custom_code -> (kind, field names), from tflm_vit/ops. MLP fields are variable (None):
# see mlp_fields().
OPS = {spec.code: (spec.kind, spec.fields) for spec in ops.ALL}

GELU_MODE_TABLE, GELU_MODE_SHIFT = _gelu.MODE_TABLE, _gelu.MODE_SHIFT
MLP_HEAD, MLP_STAGE = _mlp.HEAD, _mlp.STAGE  # a head, then MLP_STAGE per stage
mlp_fields = _mlp.fields_for


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
