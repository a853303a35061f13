"""The converter: an exported int8 ViT in, the same model on our TFLM ops out.

Finds the ViT parts (converters/patterns.py), replaces each with our custom ops
carrying precomputed integer parameters (converters/rewrites.py), writes a valid
flatbuffer with TFLM's model editor, and verifies every rewrite by running the old
and new model in the tflite-micro wheel on the same inputs: each new op's output in
the interpreter must equal its NumPy reference bit for bit."""

from __future__ import annotations

import dataclasses


from tflm_vit.converters import model_io as mio
from tflm_vit.converters import patterns as pat
from tflm_vit.converters import (fold_bias, layout_chains, one_channel_depthwise, split_qkv,
                                  static_batch)
from tflm_vit.converters.rewrites import NewOp, Rewriter, Settings, Unmappable
from tflm_vit.errors import ConversionError
from tflm_vit import ops
from tflm_vit.tflite_model import load_model

# Ops that stay as they are: stock int8 TFLM builtins that need no custom op.
KEPT_KINDS = {pat.STEM: "convolutional stem: stock int8 CONV_2D (CMSIS-NN's on Cortex-M)",
              pat.RESIDUAL_ADD: "stock int8 ADD, no custom op needed",
              pat.MEAN_POOL: "stock int8 MEAN over tokens, no custom op needed"}


@dataclasses.dataclass
class Rewritten:
    kind: str
    replaced: tuple[int, ...]  # original op indices
    new_ops: list[NewOp]
    verified: str = "not run"
    stock_max_lsb: int | None = None  # |new - stock| at the rewrite's output, on the samples
    # |op - stock| per new op fed the stock model's own inputs (the op alone, no error
    # carried in from upstream), max over the samples; None where not comparable.
    isolated_lsb: dict | None = None


@dataclasses.dataclass
class Left:
    ops: tuple[int, ...]
    names: tuple[str, ...]
    reason: str


@dataclasses.dataclass
class Conversion:
    model: bytes
    rewritten: list[Rewritten]
    left: list[Left]
    top1_agreement_with_stock: float | None = None  # on the verification samples
    samples: int = 0
    baseline: str = "not verified"  # what "stock" means in the verification
    notes: list = dataclasses.field(default_factory=list)  # what was done on the way in

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.rewritten:
            for op in r.new_ops:
                counts[op.custom_code] = counts.get(op.custom_code, 0) + 1
        return counts


def _name(kind: str, n: int) -> str:
    return f"tv/{kind}{n}"


def _plan(info, rewriter: Rewriter, settings: Settings, strict: bool):
    """Matches -> Rewritten groups and Left ops."""
    matches = pat.find_patterns(info)
    unmatched = pat.unmatched_ops(info, matches)
    left: list[Left] = []
    if unmatched:
        names = tuple(info.ops[i].name for i in unmatched)
        if strict:
            raise ConversionError(
                "cannot map " + ", ".join(f"op {i} ({n})" for i, n in zip(unmatched, names))
                + ": not part of any ViT pattern the converter knows (see export.py); pass "
                "keep_unmapped=True / --keep-unmapped to leave them as they are")
        left.append(Left(tuple(unmatched), names, "no known pattern; left as is"))

    by_op = {i: m for m in matches for i in m.ops}
    graph = pat._Graph(info)  # producer / consumer maps, shared with the matchers
    used: set[int] = set()
    groups: list[Rewritten] = []
    counter: dict[str, int] = {}

    def name(kind):
        counter[kind] = counter.get(kind, 0) + 1
        return _name(kind, counter[kind] - 1)

    def attempt(kind, ops, build):
        try:
            new = build()
        except Unmappable as e:
            left.append(Left(tuple(sorted(ops)), tuple(info.ops[i].name for i in sorted(ops)),
                             f"{kind}: {e}"))
            return
        used.update(ops)
        groups.append(Rewritten(kind, tuple(sorted(ops)), new if isinstance(new, list) else [new]))

    def linear_chain(first_fc: int) -> list[int] | None:
        m = by_op.get(first_fc)
        if m is None or m.kind not in (pat.LINEAR, pat.LOW_RANK_LINEAR):
            return None
        return list(m.ops)

    for m in matches:
        if set(m.ops) & used:
            continue
        if m.kind in KEPT_KINDS:
            left.append(Left(m.ops, tuple(info.ops[i].name for i in m.ops), KEPT_KINDS[m.kind]))
        elif m.kind == pat.PATCH_EMBEDDING:
            attempt(m.kind, m.ops[:2], lambda m=m: rewriter.patch_embedding(m, name("patch")))
            for add in m.ops[2:]:
                left.append(Left((add,), (info.ops[add].name,),
                                 "position-embedding ADD: stock int8 ADD, no custom op needed"))
        elif m.kind == pat.LAYERNORM:
            attempt(m.kind, m.ops, lambda m=m: rewriter.layernorm(m, name("layernorm")))
        elif m.kind == pat.ATTENTION:
            attempt(m.kind, m.ops, lambda m=m: rewriter.attention(m, name("attention")))
        elif m.kind == pat.GELU and settings.fuse_mlp:
            x_producer = graph.producer.get(m.input)
            up = linear_chain(x_producer) if x_producer is not None else None
            consumer = graph.only_consumer(m.output)
            down = linear_chain(consumer) if consumer is not None else None
            if up is None or down is None or set(up + down) & used:
                attempt("mlp", m.ops, lambda m=m: rewriter.gelu(m, name("gelu")))
                continue
            ops = up + list(m.ops) + down
            attempt("mlp", ops,
                    lambda m=m, up=up, down=down: rewriter.mlp(up, m, down, name("mlp")))
        elif m.kind == pat.GELU:
            attempt(m.kind, m.ops, lambda m=m: rewriter.gelu(m, name("gelu")))
        # Linear matches wait for the loop below: an MLP may take them first.
    for m in matches:
        if m.kind == pat.LINEAR and not set(m.ops) & used:
            attempt(m.kind, m.ops, lambda m=m: rewriter.linear(m.ops[0], name("linear")))
        elif m.kind == pat.LOW_RANK_LINEAR and not set(m.ops) & used:
            attempt(m.kind, m.ops,
                    lambda m=m: rewriter.low_rank_linear(m.ops[0], m.ops[1], name("low_rank")))
    return groups, left


def _apply(model, groups: list[Rewritten]) -> None:
    """Replace the original ops of every group with its new ops, each at its anchor."""
    sg = model.subgraphs[0]
    replaced = {i for g in groups for i in g.replaced}
    at_anchor: dict[int, list] = {}
    for g in groups:
        for op in g.new_ops:
            at_anchor.setdefault(op.anchor, []).append(op)
    new_list = []
    for i, op in enumerate(sg.operators):
        if i not in replaced:
            new_list.append(op)
        for new in at_anchor.get(i, []):
            new_list.append(new.operator())
    sg.operators = new_list
    mio.prune(model)


def _drop_unread_quantization(model) -> int:
    """Drops the quantization of every constant only our ops read, returning how many.
    Our kernels take their requantisation from their own tables (a multiplier and a shift
    per channel) and check only their activations' zero points, never a weight's or a
    bias's quantization: a per-channel one costs 12 bytes of flash a channel (a float32
    scale, an int64 zero point) that no one reads, about a fifth of a small ViT's model.
    A constant a stock op also reads keeps it."""
    sg = model.subgraphs[0]
    readers: dict[int, list] = {}
    for op in sg.operators:
        for x in op.inputs:
            if x is not None:
                readers.setdefault(id(x), []).append(op)
    dropped = 0
    for x in sg.tensors:
        ops = readers.get(id(x), [])
        if (x.quantization is not None and mio.is_constant(x) and ops
                and all((op.custom_code or "").startswith("TV_") for op in ops)):
            x.quantization = None  # the wrapper's, and the schema object's it syncs into
            x._fb.quantization = None
            dropped += 1
    return dropped


def _check_samples(samples, info):
    """The verification images as the model takes them: int8 [n, H, W, C]."""
    import numpy as np
    x = info.tensors[info.inputs[0]]
    want = tuple(x.shape[1:])
    try:
        arr = np.asarray(samples)
    except (TypeError, ValueError) as e:
        raise ConversionError(f"samples: not an array ({e})") from None
    if arr.dtype != np.int8 or arr.ndim != len(want) + 1 or tuple(arr.shape[1:]) != want \
            or len(arr) == 0:
        shape = ", ".join(map(str, want))
        raise ConversionError(f"samples must be int8 images of shape (n, {shape}) for input "
                              f"tensor {x.name!r}, got {arr.dtype} {tuple(arr.shape)}")
    return arr


def _check_convertible(info) -> None:
    """The model is what `tflm-vit export` writes: not converted yet, static, int8."""
    ours = sorted({op.name for op in info.ops if op.name in ops.BY_CODE})
    if ours:
        raise ConversionError(f"the model is already converted (it has {', '.join(ours)}); "
                              "convert the model `tflm-vit export` wrote")
    dynamic = [t for t in info.tensors if t.is_dynamic]
    if dynamic:
        raise ConversionError(f"tensor {dynamic[0].index} ({dynamic[0].name}) has a dynamic "
                              f"shape {list(dynamic[0].shape_signature)}; export a static, "
                              "batch-1 model (tflm-vit export)")
    x = info.tensors[info.inputs[0]] if info.inputs else None
    if x is not None and x.dtype != "INT8":
        kind = "int16x8" if x.dtype == "INT16" else x.dtype.lower()
        raise ConversionError(f"the model is {kind} (input tensor {x.name!r} is {x.dtype}); "
                              "our ops take fully int8 models (tflm-vit export)")


# Rewrites into the forms the patterns read, each bit for bit or said where not (the
# note names the module and its count).
_BEFORE_PATTERNS = (
    (fold_bias.fold_bias_adds, "{n} bias ADDs folded into the FULLY_CONNECTED before them "
                               "(converters/fold_bias.py)"),
    (split_qkv.split_fused_qkv, "{n} fused qkv projections split into q, k and v "
                                "(converters/split_qkv.py)"),
    (one_channel_depthwise.depthwise_to_conv, "{n} one-channel DEPTHWISE_CONV_2D made "
                                              "CONV_2D (converters/one_channel_depthwise.py)"),
    (layout_chains.collapse_layout_chains, "{n} TRANSPOSE/RESHAPE chains that move no "
                                           "element made one RESHAPE "
                                           "(converters/layout_chains.py)"))


def convert(model, *, fuse_mlp: bool = True, gelu: str = "table",
            sqrt_iterations: int | None = None, overwrite_image: bool = True,
            keep_unmapped: bool = False, verify: bool = True, samples=None,
            keep_constant_quantization: bool = False) -> Conversion:
    """Rewrites `model` (path or bytes of an exported int8 ViT) onto our ops. A model with
    a free batch (TFLiteConverter.from_keras_model) is first made static at batch 1.

    samples: int8 input images [n, H, W, C] for verification (default: 4 seeded random
    images). keep_constant_quantization: keep the quantization of the weights and biases
    only our ops read (dropped by default: _drop_unread_quantization). Raises ConversionError for an op it cannot map (unless keep_unmapped) or
    a rewrite whose output is not bit-exact with its reference."""
    if gelu not in ("table", "shift"):
        raise ConversionError(f"gelu must be 'table' or 'shift', got {gelu!r}")
    # The kernel's range (tv_layernorm_validate); 0 is refused, not taken as the default.
    if sqrt_iterations is not None and not 1 <= sqrt_iterations <= 64:
        raise ConversionError(f"sqrt_iterations must be in [1, 64], got {sqrt_iterations}")
    data, info = load_model(model)
    notes = []
    editable = mio.read(data)
    if static_batch.is_dynamic(editable):
        folded = static_batch.make_static(editable)
        notes.append(f"made static at batch 1: the free batch fixed, {folded} shape ops "
                     "folded into constants (converters/static_batch.py)")
    for rewrite, what in _BEFORE_PATTERNS:
        n = rewrite(editable)
        if n:
            notes.append(what.format(n=n))
    if notes:  # the rewrites below index the model as written: write it, read it back
        data, info = load_model(mio.build(editable))
        editable = mio.read(data)
    _check_convertible(info)
    if samples is not None:
        samples = _check_samples(samples, info)
    settings = Settings(fuse_mlp=fuse_mlp, gelu=gelu,
                        sqrt_iterations=(Settings.sqrt_iterations if sqrt_iterations is None
                                         else sqrt_iterations),
                        overwrite_image=overwrite_image)
    groups, left = _plan(info, Rewriter(editable, settings), settings, strict=not keep_unmapped)
    n_stock = len(info.tensors)
    for g in groups:  # remember original indices before the build renumbers tensors
        for op in g.new_ops:
            op.stock_output = op.output._index
            ins = [op.inputs[k]._index for k in op.activations]
            # Inputs that are tensors of the stock model (not made by the rewrite) let the
            # op be compared with the stock ops it replaces on exactly the same inputs.
            if all(i is not None and 0 <= i < n_stock for i in ins):
                op.stock_inputs = tuple(ins)
    _apply(editable, groups)
    if not keep_constant_quantization:
        _drop_unread_quantization(editable)
    out = mio.build(editable)
    result = Conversion(out, sorted(groups, key=lambda g: g.replaced[0]),
                        sorted(left, key=lambda l: l.ops[0]), notes=notes)
    if verify:
        from tflm_vit.converters.verify import verify_conversion
        baseline, result.baseline = wheel_baseline(data, info, settings)
        verify_conversion(baseline, result, samples)
    return result


def wheel_baseline(data: bytes, info, settings: Settings) -> tuple[bytes, str]:
    """The stock model as the wheel can run it, for the verification: TFLite's builtin
    GELU, which the wheel lacks (tflite-micro #3218), becomes our TV_GELU table op
    (float-then-quantise, entry by entry, like TFLite's own GELU lookup table); the
    tensor indices stay the stock model's (the tables are appended)."""
    gelus = [m for m in pat.find_patterns(info)
             if m.kind == pat.GELU and "builtin" in dict(m.roles)]
    if not gelus:
        return data, "the stock model"
    editable = mio.read(data)
    rewriter = Rewriter(editable, dataclasses.replace(settings, gelu="table"))
    groups = [Rewritten(pat.GELU, m.ops, [rewriter.gelu(m, _name("stock_gelu", k))])
              for k, m in enumerate(gelus)]
    _apply(editable, groups)
    baseline = mio.build(editable)
    _, check = load_model(baseline)
    if [t.name for t in check.tensors[:len(info.tensors)]] != [t.name for t in info.tensors]:
        raise ConversionError("internal: the GELU baseline renumbered the stock tensors")
    return baseline, (f"the stock model with its {len(gelus)} builtin GELU op(s) run as "
                      "TV_GELU tables (the tflite-micro wheel has no GELU kernel)")
