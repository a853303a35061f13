"""The custom options of our ops: a FlexBuffers map, as TFLM's own custom ops carry
theirs (read with `flexbuffers::GetRoot(...).AsMap()`), so Netron and TFLite's analyzer
show them:

    {"op": "TV_LINEAR", "version": 2, "tokens": 49, "in_features": 64, ...}

Every value is an int32 scalar; arrays (weights, requantisation, tables) travel as
constant input tensors, so they stay in flash. Each op's kind and field names are
declared once, in its module of tflm_vit/ops. The C side reads the keys and the field
positions from two headers generated here (`python -m tflm_vit.twins.options --write`;
the tests check both are current): custom_ops/kernels/tv_op_fields.h (the positions, for
the portable kernels) and custom_ops/tflm/option_names.h (the keys, for the reader in
custom_ops/tflm/options_reader.cc)."""

from __future__ import annotations

from flatbuffers import flexbuffers

from tflm_vit import ops
from tflm_vit.ops import gelu as _gelu
from tflm_vit.ops import mlp as _mlp

# 1 was a fixed-layout blob with magic "TVOP" (models converted before FlexBuffers; the
# reader names it and asks for a re-convert).
VERSION = 2
RESERVED = ("op", "version")  # keys of the map that are not fields

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
    values = {n: int(fields[n]) for n in names}
    for n, v in values.items():
        if not -(2**31) <= v < 2**31:
            raise ValueError(f"{op} option {n} = {v} does not fit int32")
    # Every scalar and offset 32 bits wide: the map's size then depends on its keys alone,
    # never on the values, so the search's cost model (shape-only weights) gives the
    # deployed model's flash to the byte. (The builder sorts the keys, as maps require.)
    b = flexbuffers.Builder(force_min_bit_width=flexbuffers.BitWidth.W32)
    with b.Map():
        b.Key("op")
        b.String(op)
        b.Key("version")
        b.Int(VERSION)
        for name, value in values.items():
            b.Key(name)
            b.Int(value)
    return bytes(b.Finish())


def unpack(op: str, blob: bytes) -> dict:
    """Reads a map back (the converter's own check, the memory model, reports): the
    fields by name; ValueError naming what is wrong. The adapters' own reader
    (options_reader.cc, through tflm_vit._kernels) checks the bytes first, so a model
    file's options are verified once, by the code the firmware runs, before Python
    decodes them."""
    from tflm_vit import _kernels
    kind, names = OPS[op]
    blob = bytes(blob)
    try:
        _kernels.parse_options(blob, kind, -1 if names is None else len(names))
    except ValueError as e:
        raise ValueError(f"{op} {e}") from None
    fields = {k: v for k, v in flexbuffers.Loads(blob).items() if k not in RESERVED}
    try:
        names = field_names(op, fields)
    except KeyError as e:
        raise ValueError(f"{op} options: missing {e}") from None
    if set(names) != set(fields):
        raise ValueError(f"{op} options: missing {sorted(set(names) - set(fields))}, "
                         f"unexpected {sorted(set(fields) - set(names))}")
    return {n: fields[n] for n in names}


HEADER = "custom_ops/kernels/tv_op_fields.h"
NAMES_HEADER = "custom_ops/tflm/option_names.h"


def c_header() -> str:
    """tv_op_fields.h: the op kinds and each op's field positions, for the C side."""
    lines = [
        "// Generated from tflm_vit/twins/options.py (`python -m tflm_vit.twins.options",
        "// --write`); do not edit: tests/test_options_header.py checks it is current.",
        "// Our ops' kinds and the position of each custom-options field (the FlexBuffers",
        "// map's keys: custom_ops/tflm/option_names.h) in tv_options.fields.",
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


def names_header() -> str:
    """option_names.h: each op's FlexBuffers keys in field order, for the C++ reader
    (custom_ops/tflm/options_reader.cc). TV_MLP lists its head and the fields of its
    most stages (mlp.MAX_STAGES); a map holds the head and the stages it has."""
    lines = [
        "// Generated from tflm_vit/twins/options.py (`python -m tflm_vit.twins.options",
        "// --write`); do not edit: tests/test_options_header.py checks it is current.",
        "// Each op's custom-options keys (a FlexBuffers map), in the field order of",
        "// tv_op_fields.h. Included by options_reader.cc only.",
        "#ifndef TFLM_VIT_TFLM_OPTION_NAMES_H_",
        "#define TFLM_VIT_TFLM_OPTION_NAMES_H_",
        "",
        "#include <stdint.h>",
        "",
        "namespace tv_tflm {",
        "",
        f"constexpr int64_t kOptionsVersion = {VERSION};",
        "",
    ]
    table = []
    for op, (kind, names) in OPS.items():
        if names is None:  # TV_MLP: the head, then each possible stage's fields
            names = mlp_fields(_mlp.MAX_STAGES, 0)
        ident = "k" + "".join(w.capitalize() for w in op[3:].split("_")) + "Keys"
        lines.append(f"static const char* const {ident}[] = {{")
        lines += [f'    "{n}",' for n in names]
        lines.append("};")
        table.append(f'    {{{kind}, "{op}", {ident}, {len(names)}}},')
    lines += ["", "struct OptionKeys {", "  int32_t kind;", "  const char* op;",
              "  const char* const* keys;", "  int count;", "};", "",
              "static const OptionKeys kOptionKeys[] = {", *table, "};", "",
              "}  // namespace tv_tflm", "", "#endif  // TFLM_VIT_TFLM_OPTION_NAMES_H_", ""]
    return "\n".join(lines)


def write_headers(repo) -> None:
    import pathlib
    repo = pathlib.Path(repo)
    (repo / HEADER).write_text(c_header())
    (repo / NAMES_HEADER).write_text(names_header())


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="write the C headers of our ops' option fields "
                                             f"({HEADER}, {NAMES_HEADER})")
    ap.add_argument("--write", metavar="REPO", nargs="?", const=".",
                    help="the repository to write them into (default: .)")
    a = ap.parse_args()
    if a.write is None:
        ap.error("nothing to do: pass --write [REPO]")
    write_headers(a.write)
