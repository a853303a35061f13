"""Finding the export's op patterns again in a TFLite model.

The export (tflm_vit/export.py) promises a stable op pattern for each ViT part; these
matchers are that promise in code. The converter rewrites what they find; the tests
hold every exported subnet to them (every operator belongs to exactly one match).

A match is a set of operator indices with one activation input and one output
(besides constants), found by data flow, not by position.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tflm_vit.tflite_model import ModelInfo

LAYERNORM = "layernorm"
GELU = "gelu"
ATTENTION = "attention"
LINEAR = "linear"
LOW_RANK_LINEAR = "low_rank_linear"
PATCH_EMBEDDING = "patch_embedding"
RESIDUAL_ADD = "residual_add"
STEM = "stem"
MEAN_POOL = "mean_pool"


@dataclasses.dataclass(frozen=True)
class Match:
    kind: str
    ops: tuple[int, ...]  # operator indices, ascending
    input: int  # activation tensor entering the pattern
    output: int  # tensor leaving it
    roles: tuple = ()  # (name, op index) pairs naming the parts (attention: q, k, v, ...)

    def role(self, name: str) -> int:
        return dict(self.roles)[name]


class _Graph:
    def __init__(self, info: ModelInfo):
        self.info = info
        self.producer: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        for op in info.ops:
            for t in op.outputs:
                self.producer[t] = op.index
            for t in op.inputs:
                if t >= 0:
                    self.consumers.setdefault(t, []).append(op.index)

    def op(self, i):
        return self.info.ops[i]

    def name(self, i):
        return self.info.ops[i].name

    def const(self, t):
        return t < 0 or self.info.tensors[t].is_constant

    def act_inputs(self, i) -> list[int]:
        return [t for t in self.op(i).inputs if not self.const(t)]

    def out(self, i) -> int:
        return self.op(i).outputs[0]

    def const_value(self, t):
        """A constant tensor's values (flat int list), e.g. a TRANSPOSE's permutation."""
        model = self.info.model
        tensor = model.subgraphs[0].tensors[t]
        data = model.buffers[tensor.buffer].data
        dtype = {"INT32": np.int32, "INT64": np.int64}.get(self.info.tensors[t].dtype)
        if data is None or dtype is None:
            return None
        return np.frombuffer(bytes(bytearray(data)), dtype).tolist()

    def options(self, i):
        return self.info.model.subgraphs[0].operators[i].builtinOptions

    def only_consumer(self, t, name=None):
        cons = self.consumers.get(t, [])
        if len(cons) == 1 and (name is None or self.name(cons[0]) == name):
            return cons[0]
        return None

    def back(self, t, names):
        """Walk producers through ops named in order `names` (each single-input);
        returns the op indices walked and the tensor reached, or None."""
        walked = []
        for n in names:
            p = self.producer.get(t)
            if p is None or self.name(p) != n or len(self.act_inputs(p)) != 1:
                return None
            walked.append(p)
            t = self.act_inputs(p)[0]
        return walked, t


# RESHAPE: PyTorch's exports (litert-torch) take MEAN without keep_dims and reshape the
# per-token statistics back, computing x * r + (0 - mean * r) with r = RSQRT(var + eps).
_LAYERNORM_OPS = {"MEAN", "DEQUANTIZE", "NEG", "QUANTIZE", "SQUARED_DIFFERENCE", "ADD",
                  "SUB", "RSQRT", "MUL", "RESHAPE"}


def _layernorms(g: _Graph) -> list[Match]:
    """MEAN(x), SQUARED_DIFFERENCE(x, mean) -> MEAN -> ADD(eps) -> RSQRT -> MUL/ADD ...

    The converter (TFLite's, or litert-torch's, with RESHAPEs in between) emits a LayerNorm as one contiguous run of ops starting at MEAN(x);
    the match is the shortest such run that holds one RSQRT, takes no activation but x
    and ones made inside, and lets exactly one tensor out."""
    found = []
    ops = g.info.ops
    for op in ops:
        if op.name != "MEAN" or len(g.act_inputs(op.index)) != 1:
            continue
        x = g.act_inputs(op.index)[0]
        mean = [g.out(op.index)]  # and what RESHAPEs of it the difference may take
        mean += [g.out(c) for c in g.consumers.get(mean[0], []) if g.name(c) == "RESHAPE"]
        sqd = [c for m in mean for c in g.consumers.get(m, [])
               if g.name(c) == "SQUARED_DIFFERENCE" and x in g.act_inputs(c)]
        if not sqd:
            continue
        region: list[int] = []
        for j in range(op.index, min(len(ops), op.index + 24)):
            if ops[j].name not in _LAYERNORM_OPS:
                break
            region.append(j)
            out = _single_exit(g, region, x)
            if out is not None and [g.name(i) for i in region].count("RSQRT") == 1:
                affine, out = _trailing_affine(g, out)
                found.append(Match(LAYERNORM, tuple(region + affine), x, out,
                                   tuple(("affine", i) for i in affine)))
                break
    return found


def _trailing_affine(g: _Graph, out: int) -> tuple[list[int], int]:
    """The MUL / ADD by per-channel constants that follow a LayerNorm as its sole
    consumers, and the tensor they let out: a LayerNorm's affine left outside it
    (PyTorch's exports fold it into the next linear, but not where a class token's
    SLICE stands in between, as before timm's head); the LayerNorm takes it in."""
    ops: list[int] = []
    d = g.info.tensors[out].shape[-1]
    while (out not in g.info.outputs and (c := g.only_consumer(out)) is not None
           and g.name(c) in ("MUL", "ADD")):
        inputs, opts = g.op(c).inputs, g.options(c)
        consts = [t for t in inputs if g.const(t)]
        if (len(inputs) != 2 or len(consts) != 1 or consts[0] < 0
                or (opts is not None and opts.fusedActivationFunction != 0)):
            break
        shape = g.info.tensors[consts[0]].shape
        if not (shape and shape[-1] == d and int(np.prod(shape)) == d):
            break
        ops.append(c)
        out = g.out(c)
    return ops, out


def _single_exit(g: _Graph, region: list[int], x: int):
    """The one tensor a closed region lets out, or None."""
    inside = set(region)
    for i in region:
        if any(t != x and g.producer.get(t) not in inside for t in g.act_inputs(i)):
            return None
    exits = [t for i in region for t in g.op(i).outputs
             if t in g.info.outputs or any(u not in inside for u in g.consumers.get(t, []))]
    return exits[0] if len(exits) == 1 else None


def _gelus(g: _Graph) -> list[Match]:
    """MUL(x, const) -> LOGISTIC -> (RESHAPE) -> MUL(x, .): x * sigmoid(1.702 x).
    The RESHAPE appears when the converter flattened x to 2-D (4, 32) vs (1, 4, 32).
    TFLite's builtin GELU op (Keras' gelu, exact or tanh form) is one op."""
    found = [Match(GELU, (op.index,), g.act_inputs(op.index)[0], g.out(op.index),
                   (("builtin", op.index),))
             for op in g.info.ops if op.name == "GELU" and len(g.act_inputs(op.index)) == 1]
    for op in g.info.ops:
        if op.name != "LOGISTIC":
            continue
        scale = g.producer.get(g.act_inputs(op.index)[0])
        if scale is None or g.name(scale) != "MUL" or len(g.act_inputs(scale)) != 1:
            continue
        x = g.act_inputs(scale)[0]
        ops, t = [scale, op.index], g.out(op.index)
        reshape = g.only_consumer(t, "RESHAPE")
        if reshape is not None:
            ops.append(reshape)
            t = g.out(reshape)
        mul = g.only_consumer(t, "MUL")
        if mul is None or sorted(g.act_inputs(mul)) != sorted([x, t]):
            continue
        found.append(Match(GELU, tuple(ops + [mul]), x, g.out(mul)))
    return found


_LAYOUT_OPS = ("RESHAPE", "TRANSPOSE")  # head split/merge; dropped when a no-op (1 head)


def _walk_to_fc(g: _Graph, t: int, forward: bool):
    """Follow RESHAPE/TRANSPOSE ops from tensor t (through its producers, or its single
    consumers when forward) to a FULLY_CONNECTED, at most 8 ops (a PyTorch export's key:
    RESHAPE, TRANSPOSE, scale MUL, RESHAPE, then the split's TRANSPOSE and RESHAPE).
    Returns (ops walked, the FULLY_CONNECTED's input when walking back or its output when
    forward) or None."""
    walked = []
    for _ in range(8):
        if forward:
            i = g.only_consumer(t)
        else:
            i = g.producer.get(t)
            i = i if i is not None and len(g.act_inputs(i)) == 1 else None
        if i is None:
            return None
        walked.append(i)
        t = g.out(i) if forward else g.act_inputs(i)[0]
        if g.name(i) == "FULLY_CONNECTED":
            return walked, t
        if g.name(i) not in _LAYOUT_OPS and not (not forward and _scalar_mul(g, i)):
            return None
    return None


def _scalar_mul(g: _Graph, i: int) -> bool:
    """MUL by one constant scalar: the attention scale, where a free-batch Keras export
    applies it to the query after the head split instead of folding it."""
    consts = [t for t in g.op(i).inputs if t >= 0 and g.const(t)]
    return (g.name(i) == "MUL" and len(g.act_inputs(i)) == 1 and len(consts) == 1
            and int(np.prod(g.info.tensors[consts[0]].shape)) == 1)


# -- axis labels ---------------------------------------------------------------------
# Attention is written many ways: our export multiplies Q K^T by the scale; Keras'
# MultiHeadAttention folds the scale into the query projection, lays K out as
# (heads, head_dim, tokens) and computes the scores transposed. Which projection is the
# query and which the key is told by data flow alone: each axis of each tensor carries a
# label (kind, branch): "T" tokens, "W" a projection's whole width, "H" heads, "D" the
# head dimension, "1" a unit axis. The layout ops move or split labels; the score
# BATCH_MATMUL must contract D (or W) with D and leave the query's T before the key's T
# at SOFTMAX, whose last axis is the key's.

def _unit_free(labels, shape):
    return [(lab, n) for lab, n in zip(labels, shape) if n != 1]


def _reshaped(labels, old_shape, new_shape):
    """Labels after a RESHAPE that only adds or drops unit axes, splits W into (H, D) or
    merges (H, D) into W; None for any other reshape."""
    src = _unit_free(labels, old_shape)
    dst = [n for n in new_shape if n != 1]
    out, i, j = [], 0, 0
    while i < len(src) and j < len(dst):
        (kind, branch), n = src[i]
        if n == dst[j]:
            out.append(src[i][0])
            i, j = i + 1, j + 1
        elif kind == "W" and j + 1 < len(dst) and dst[j] * dst[j + 1] == n:
            out += [("H", branch), ("D", branch)]
            i, j = i + 1, j + 2
        elif (kind == "H" and i + 1 < len(src) and src[i + 1][0][0] == "D"
              and n * src[i + 1][1] == dst[j]):
            out.append(("W", src[i + 1][0][1]))  # heads merged back: the D's branch
            i, j = i + 2, j + 1
        else:
            return None
    if i != len(src) or j != len(dst):
        return None
    it = iter(out)
    return [next(it) if n != 1 else ("1", None) for n in new_shape]


def _fc_labels(g: _Graph, fc: int, branch: str):
    shape = g.info.tensors[g.out(fc)].shape
    return [("1", None)] * (len(shape) - 2) + [("T", branch), ("W", branch)]


def _through_layout(g: _Graph, ops: list[int], labels):
    """Apply the RESHAPE/TRANSPOSE ops (in data-flow order) to labels; None if one moves
    axes in a way attention does not."""
    for i in ops:
        x = g.info.tensors[g.act_inputs(i)[0]].shape
        y = g.info.tensors[g.out(i)].shape
        if g.name(i) == "RESHAPE":
            labels = _reshaped(labels, x, y)
        elif g.name(i) == "MUL":
            continue  # a scalar scale moves no axis
        else:
            perm = [c for c in g.op(i).inputs if c >= 0 and g.const(c)]
            perm = g.const_value(perm[0]) if perm else None
            if perm is None or sorted(perm) != list(range(len(labels))):
                return None
            labels = [labels[k] for k in perm]
        if labels is None:
            return None
    return labels


def _branch_labels(g: _Graph, t: int, branch: str):
    """(ops walked, FULLY_CONNECTED op, its input, labels of t) for a tensor that a
    projection reaches through layout ops; None otherwise."""
    walk = _walk_to_fc(g, t, forward=False)
    if walk is None:
        return None
    ops, x = walk
    fc = ops[-1]
    labels = _through_layout(g, list(reversed(ops[:-1])), _fc_labels(g, fc, branch))
    return None if labels is None else (ops, fc, x, labels)


def _kinds(labels):
    return [k for k, _ in labels if k != "1"]


def _matmul_labels(g: _Graph, mm: int, a, b):
    """Labels of BATCH_MATMUL(a, b) (each a label list) or None: the contracted axes
    must be `contract` kinds, the batch axes heads (or none)."""
    opts = g.options(mm)
    if opts is not None and opts.adjX:
        a = a[:-2] + [a[-1], a[-2]]
    if opts is not None and opts.adjY:
        b = b[:-2] + [b[-1], b[-2]]
    if _kinds(a[:-2]) != _kinds(b[:-2]) or set(_kinds(a[:-2])) - {"H"}:
        return None
    return a[:-1] + [b[-1]], a[-1], b[-2]


# Between the score BATCH_MATMUL and SOFTMAX (a PyTorch export reshapes the 3-D scores to
# (1, H, T, T) for SOFTMAX and back for the second BATCH_MATMUL).
_SCORE_OPS = ("TRANSPOSE", "MUL", "RESHAPE")


def _attentions(g: _Graph) -> list[Match]:
    """Q/K/V FULLY_CONNECTED -> (RESHAPE -> TRANSPOSE), BATCH_MATMUL -> (MUL, TRANSPOSE)
    -> SOFTMAX -> BATCH_MATMUL -> (TRANSPOSE -> RESHAPE) -> FULLY_CONNECTED, the three
    projections reading one tensor. The layout ops are optional (the TFLite converter
    drops or merges the ones that move nothing), the scale MUL too (Keras folds it into
    the query projection); axis labels tell the query from the key (see above)."""
    found = []
    for op in g.info.ops:
        if op.name != "SOFTMAX":
            continue
        between, t = [], g.act_inputs(op.index)[0]
        while len(between) < 3:
            p = g.producer.get(t)
            if p is None or g.name(p) not in _SCORE_OPS or len(g.act_inputs(p)) != 1:
                break
            between.append(p)
            t = g.act_inputs(p)[0]
        qk = g.producer.get(t)
        probs, after = g.out(op.index), []  # SOFTMAX -> RESHAPE* -> BATCH_MATMUL
        while g.only_consumer(probs, "RESHAPE") is not None and len(after) < 2:
            after.append(g.only_consumer(probs, "RESHAPE"))
            probs = g.out(after[-1])
        av = g.only_consumer(probs, "BATCH_MATMUL")
        if qk is None or g.name(qk) != "BATCH_MATMUL" or av is None:
            continue
        if any(g.consumers.get(g.out(i), []) != [c] for i, c in
               zip(between, [op.index] + between[:-1])):
            continue
        if g.act_inputs(av)[0] != probs:
            continue
        a_in, b_in = g.act_inputs(qk)
        a, b = _branch_labels(g, a_in, "a"), _branch_labels(g, b_in, "b")
        v = _branch_labels(g, g.act_inputs(av)[1], "v") if len(g.act_inputs(av)) == 2 else None
        if None in (a, b, v) or len({a[2], b[2], v[2]}) != 1:
            continue
        scales = [i for i in between + a[0] + b[0] if g.name(i) == "MUL"]
        per_place = [sum(g.name(i) == "MUL" for i in ops) for ops in (between, a[0], b[0])]
        # one scale, or (PyTorch) its square root on the query and on the key each
        if max(per_place) > 1 or per_place[0] and len(scales) > 1 \
                or any(g.name(i) == "MUL" for i in v[0]):
            continue
        scores = _matmul_labels(g, qk, a[3], b[3])
        if scores is None or {scores[1][0], scores[2][0]} - {"D", "W"}:
            continue
        scores = _through_layout(g, [i for i in reversed(between) if g.name(i) != "MUL"],
                                 scores[0])
        if scores is None or [k for k, _ in scores[-2:]] != ["T", "T"]:
            continue
        query, key = scores[-2][1], scores[-1][1]
        if {query, key} != {"a", "b"}:
            continue
        probs_labels = _through_layout(g, after, scores)
        if probs_labels is None:
            continue
        ctx = _matmul_labels(g, av, probs_labels, v[3])
        if ctx is None or ctx[1] != ("T", key) or ctx[2] != ("T", "v"):
            continue
        tail = _walk_to_fc(g, g.out(av), forward=True)
        if tail is None:
            continue
        merged = _through_layout(g, tail[0][:-1], ctx[0])
        if merged is None or _kinds(merged) not in (["T", "W"], ["T", "D"]) \
                or merged[-2] != ("T", query):
            continue
        q, k = (a, b) if query == "a" else (b, a)
        ops = q[0] + k[0] + v[0] + [qk] + between + [op.index] + after + [av] + tail[0]
        roles = (("q", q[1]), ("k", k[1]), ("v", v[1]), ("qk", qk), ("softmax", op.index),
                 ("av", av), ("proj", tail[0][-1])) + tuple(("scale", i) for i in scales)
        found.append(Match(ATTENTION, tuple(sorted(ops)), q[2], tail[1], roles))
    return found


def _linears(g: _Graph, taken: set) -> list[Match]:
    """FULLY_CONNECTED -> FULLY_CONNECTED (the first one's output feeding only the
    second) is a low-rank linear (the first has no bias, its width is the rank); any
    other FULLY_CONNECTED not inside another pattern is a linear. (The bias test alone
    cannot tell: the TFLite converter drops all-zero biases.)"""
    found, used = [], set()
    for op in g.info.ops:
        if op.name != "FULLY_CONNECTED" or op.index in taken or op.index in used:
            continue
        nxt = g.only_consumer(g.out(op.index), "FULLY_CONNECTED")
        x = g.act_inputs(op.index)[0]
        if nxt is not None and nxt not in taken:
            used.update((op.index, nxt))
            found.append(Match(LOW_RANK_LINEAR, (op.index, nxt), x, g.out(nxt)))
        else:
            used.add(op.index)
            found.append(Match(LINEAR, (op.index,), x, g.out(op.index)))
    return found


def _patch_embeddings(g: _Graph) -> list[Match]:
    """CONV_2D -> RESHAPE to tokens -> ADD(position embedding constant); with a class
    token, CONCATENATION(token, tokens) comes between RESHAPE and ADD and the match ends
    at the RESHAPE (the class token and the ADD stay stock ops). Before the
    CONCATENATION may come an int8 -> int8 QUANTIZE (ai-edge-quantizer's move to the
    concatenation's scale), which stays stock too."""
    found = []
    for op in g.info.ops:
        if op.name != "CONV_2D" or len(g.act_inputs(op.index)) != 1:
            continue
        r = g.only_consumer(g.out(op.index), "RESHAPE")
        if r is None:
            continue
        a = g.only_consumer(g.out(r), "ADD")
        tokens = g.out(r)
        q = g.only_consumer(tokens, "QUANTIZE")
        if q is not None and g.info.tensors[g.out(q)].dtype == g.info.tensors[tokens].dtype:
            tokens = g.out(q)  # a requantisation on the way to the class token
        if a is not None and len(g.act_inputs(a)) == 1:
            found.append(Match(PATCH_EMBEDDING, (op.index, r, a), g.act_inputs(op.index)[0],
                               g.out(a)))
        elif g.only_consumer(tokens, "CONCATENATION") is not None:
            found.append(Match(PATCH_EMBEDDING, (op.index, r), g.act_inputs(op.index)[0],
                               g.out(r)))
    return found


def _stems(g: _Graph, patch_embeddings: list[Match]) -> list[Match]:
    """CONV_2D (a convolutional stem: early convolutions) whose output only the patch
    embedding reads."""
    found = []
    for m in patch_embeddings:
        p = g.producer.get(m.input)
        if (p is not None and g.name(p) == "CONV_2D" and len(g.act_inputs(p)) == 1
                and g.only_consumer(m.input) == m.ops[0]):
            found.append(Match(STEM, (p,), g.act_inputs(p)[0], m.input))
    return found


def find_patterns(info: ModelInfo) -> list[Match]:
    """Every pattern in the model, each operator in at most one match, in op order."""
    g = _Graph(info)
    patches = _patch_embeddings(g)
    matches = patches + _stems(g, patches) + _layernorms(g) + _gelus(g) + _attentions(g)
    taken = {i for m in matches for i in m.ops}
    matches += _linears(g, taken)
    taken = {i for m in matches for i in m.ops}
    for op in info.ops:  # what is left: residual adds and the mean over tokens
        if op.index in taken:
            continue
        if op.name == "ADD" and len(g.act_inputs(op.index)) == 2:
            matches.append(Match(RESIDUAL_ADD, (op.index,), g.act_inputs(op.index)[0],
                                 g.out(op.index)))
        elif op.name == "MEAN" and len(g.act_inputs(op.index)) == 1:
            matches.append(Match(MEAN_POOL, (op.index,), g.act_inputs(op.index)[0],
                                 g.out(op.index)))
    return sorted(matches, key=lambda m: m.ops[0])


def unmatched_ops(info: ModelInfo, matches: list[Match]) -> list[int]:
    taken = {i for m in matches for i in m.ops}
    return [op.index for op in info.ops if op.index not in taken]


def count_patterns(matches: list[Match]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for m in matches:
        counts[m.kind] = counts.get(m.kind, 0) + 1
    return counts
