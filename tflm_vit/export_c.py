"""A model as firmware source: `tflm-vit export-c model.tflite -o DIR/model` writes
DIR/model.h and DIR/model.cc with

- the model as a 16-byte-aligned array (TFLM reads flatbuffers in place);
- the arena to give TFLM on the target, from the memory model (the model's offline plan
  included), rounded as TFLM needs;
- `RegisterOps(resolver)`, adding exactly the builtins and tflm-vit ops the model uses,
  and `OpResolver`, a MicroMutableOpResolver whose template size is that op count, so
  the resolver is never too small or too large.

The builtins tflm-vit supports are those the memory model knows (tail.KNOWN_BUILTINS);
each maps to its MicroMutableOpResolver method below (tests check the names against a
TFLM tree). An op neither in that set nor ours is refused, by name."""

from __future__ import annotations

import dataclasses
import os
import re

from tflm_vit.errors import TflmVitError
from tflm_vit.memory.predict import predict_info
from tflm_vit.memory.targets import TARGETS, Target
from tflm_vit.memory.tail import KNOWN_BUILTINS
from tflm_vit import ops
from tflm_vit.tflite_model import ModelInfo, load_model

# Builtin -> its MicroMutableOpResolver<N> method (tensorflow/lite/micro/
# micro_mutable_op_resolver.h).
RESOLVER_METHODS = {
    "ADD": "AddAdd", "SUB": "AddSub", "MUL": "AddMul", "MEAN": "AddMean", "SUM": "AddSum",
    "FULLY_CONNECTED": "AddFullyConnected", "RESHAPE": "AddReshape",
    "BATCH_MATMUL": "AddBatchMatMul", "SOFTMAX": "AddSoftmax", "CONV_2D": "AddConv2D",
    "DEQUANTIZE": "AddDequantize", "QUANTIZE": "AddQuantize",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "RSQRT": "AddRsqrt",
    "LOGISTIC": "AddLogistic", "TRANSPOSE": "AddTranspose", "NEG": "AddNeg",
    # What common MCU CNNs add (tflm_vit.model_zoo; bench/any_model.py).
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "MAX_POOL_2D": "AddMaxPool2D", "CONCATENATION": "AddConcatenation",
    "STRIDED_SLICE": "AddStridedSlice", "PAD": "AddPad", "HARD_SWISH": "AddHardSwish",
    "TANH": "AddTanh", "PACK": "AddPack", "GATHER": "AddGather", "SHAPE": "AddShape",
    "RELU": "AddRelu", "RELU6": "AddRelu6",
    # What PyTorch exports add (timm's class token: tflm_vit.model_zoo.timm_vit).
    "SLICE": "AddSlice",
}
assert set(RESOLVER_METHODS) == set(KNOWN_BUILTINS), "one builtin list: tail.KNOWN_BUILTINS"


class ExportCError(TflmVitError, ValueError):
    """The model cannot be turned into firmware source (an op no one provides, a bad
    output path)."""


@dataclasses.dataclass(frozen=True)
class FirmwareSource:
    header: str
    source: str
    arena_size: int
    builtins: tuple[str, ...]
    custom_ops: tuple[str, ...]
    namespace: str = ""
    stem: str = ""  # where export_c wrote it: STEM.h and STEM.cc


def model_ops(info: ModelInfo) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(builtins, tflm-vit ops) the model uses, sorted; ExportCError names any other op."""
    names = {op.name for op in info.ops}
    unknown = sorted(n for n in names if n not in RESOLVER_METHODS and n not in ops.BY_CODE)
    if unknown:
        where = {n: [op.index for op in info.ops if op.name == n] for n in unknown}
        raise ExportCError("; ".join(
            f"op {n} (operators {where[n][:5]}{'...' if len(where[n]) > 5 else ''}) is neither "
            "a TFLM builtin tflm-vit supports nor a tflm-vit op" for n in unknown))
    return (tuple(sorted(n for n in names if n in RESOLVER_METHODS)),
            tuple(sorted(n for n in names if n in ops.BY_CODE)))


def resolver_source(builtins, custom_ops, namespace: str) -> tuple[str, str]:
    """Declarations and definition of `OpResolver` and `RegisterOps` for these ops."""
    count = len(builtins) + len(custom_ops)
    decl = (f"constexpr unsigned int kOpCount = {count};  // builtins + tflm-vit ops used\n"
            "using OpResolver = tflite::MicroMutableOpResolver<kOpCount>;\n"
            "// Adds exactly the ops the model uses; kTfLiteError if any is refused.\n"
            "TfLiteStatus RegisterOps(OpResolver& resolver);\n")
    lines = ["TfLiteStatus RegisterOps(OpResolver& resolver) {"]
    for b in builtins:
        lines.append(f"  if (resolver.{RESOLVER_METHODS[b]}() != kTfLiteOk) return kTfLiteError;")
    for c in custom_ops:
        lines.append(f"  if (resolver.AddCustom(\"{c}\", tv_tflm::Register_{c}()) != kTfLiteOk) "
                     "return kTfLiteError;")
    lines += ["  return kTfLiteOk;", "}"]
    return decl, "\n".join(lines) + "\n"


# C and C++ keywords (and the alternative tokens) a namespace may not be named; a stem
# that is one gets a "_model" suffix, as does one reserved to the implementation
# (a leading underscore and capital, or a double underscore anywhere).
CXX_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t
char16_t char32_t class co_await co_return co_yield compl concept const consteval
constexpr constinit const_cast continue decltype default delete do double dynamic_cast
else enum explicit export extern false float for friend goto if inline int long mutable
namespace new noexcept not not_eq nullptr operator or or_eq private protected public
register reinterpret_cast requires restrict return short signed sizeof static
static_assert static_cast struct switch template this thread_local throw true try
typedef typeid typename union unsigned using virtual void volatile wchar_t while xor
xor_eq _Bool _Complex _Imaginary""".split())
HEADER_SUFFIXES = (".h", ".hpp", ".hh", ".cc", ".cpp", ".cxx", ".c")


def _identifier(stem: str) -> str:
    name = re.sub(r"\W", "_", stem)
    name = name if name and not name[0].isdigit() else f"m_{name}"
    if name in CXX_KEYWORDS or "__" in name or re.match(r"_[A-Z]", name):
        name = f"{name.strip('_') or 'm'}_model"
    return name


def firmware_source(model, name: str, target: Target) -> FirmwareSource:
    data, info = load_model(model)
    builtins, custom = model_ops(info)
    prediction = predict_info(info, len(data), target)
    ns = _identifier(name)
    decl, body = resolver_source(builtins, custom, ns)
    guard = f"TFLM_VIT_GENERATED_{ns.upper()}_H_"
    header = f"""// Generated by `tflm-vit export-c` from a {len(data)}-byte model; do not edit.
// Target: {target.name} ({target.description}).
#ifndef {guard}
#define {guard}

#include <stddef.h>

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace {ns} {{

// The flatbuffer, 16-byte aligned; pass it to tflite::GetModel().
extern const unsigned char kModel[];
constexpr unsigned int kModelSize = {len(data)};
// The arena to give TFLM on {target.name}: what TFLM records for this model
// ({prediction.total} bytes{", with its offline plan" if prediction.planned else ""}),
// rounded as TFLM needs. Place it 16-byte aligned.
constexpr size_t kArenaSize = {prediction.arena_to_give};

{decl}
}}  // namespace {ns}

#endif  // {guard}
"""
    array = ",".join(("\n  " if i % 16 == 0 else "") + f"0x{b:02x}" for i, b in enumerate(data))
    source = f"""// Generated by `tflm-vit export-c`; do not edit.
#include "{name}.h"

#include "op_table.h"  // tflm-vit's op registrations (custom_ops/tflm)

namespace {ns} {{

alignas(16) const unsigned char kModel[] = {{{array}
}};

{body}
}}  // namespace {ns}
"""
    return FirmwareSource(header, source, prediction.arena_to_give, builtins, custom, ns)


def export_c(model, out_stem, target: str = "cortex-m") -> FirmwareSource:
    """Writes OUT_STEM.h and OUT_STEM.cc; returns what was written. A stem ending in a
    C/C++ suffix (model.h) drops it; the namespace is the stem as a C identifier, a C++
    keyword or reserved name suffixed with "_model"."""
    if target not in TARGETS:
        raise ExportCError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if not isinstance(out_stem, (str, os.PathLike)) or isinstance(os.fspath(out_stem), bytes):
        raise ExportCError(f"out_stem must be a path such as 'app/model' (str or "
                           f"os.PathLike), got {type(out_stem).__name__}")
    out_stem = os.fspath(out_stem)
    if out_stem.endswith(HEADER_SUFFIXES):  # `-o app/model.h` means the stem app/model
        out_stem = os.path.splitext(out_stem)[0]
    folder, name = os.path.split(out_stem)
    if not name or os.path.isdir(out_stem):
        raise ExportCError(f"{out_stem}: give a file stem such as DIR/model (writes model.h, "
                           "model.cc)")
    if folder and not os.path.isdir(folder):
        raise ExportCError(f"{folder}: no such directory")
    if not os.access(folder or ".", os.W_OK):
        raise ExportCError(f"{folder or os.getcwd()}: not writable")
    fw = firmware_source(model, name, TARGETS[target])
    for suffix, text in ((".h", fw.header), (".cc", fw.source)):
        tmp = out_stem + suffix + ".tmp"
        try:
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, out_stem + suffix)
        except OSError as e:
            raise ExportCError(f"{out_stem + suffix}: cannot write ({e.strerror})") from None
    return dataclasses.replace(fw, stem=out_stem)
