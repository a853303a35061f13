"""Kernel test vectors: random cases of every portable kernel with the output its NumPy
twin computes, written as a tape that custom_ops/tests/vector_tests.c replays on the
host and, under QEMU, on Cortex-M4/M7 (read there through semihosting).

Tape (little-endian int32 words): "TVVT", version 1, case count; per case the kernel
kind (KINDS), the byte count of its arguments, the arguments in the order the C reader
takes them (an array = byte count + bytes padded to 4; None = an empty array), then the
expected output array."""

from __future__ import annotations

import numpy as np

from tflm_vit.twins import attention as A
from tflm_vit.twins import fixed_point as fp
from tflm_vit.twins import gelu as G
from tflm_vit.twins import layernorm as LN
from tflm_vit.twins import linear as L
from tflm_vit.twins import mlp as M
from tflm_vit.twins import patch_embed as PE
from tflm_vit.twins import softmax as S

# The kernel kinds of the tape: the one definition. vector_tests.c reads them from
# custom_ops/tests/vector_kinds.h, generated from here (`python -m tflm_vit.twins.vectors
# --header custom_ops/tests/vector_kinds.h`; tests/test_options_header.py checks it).
KINDS = {"linear": 1, "low_rank_linear": 2, "layernorm": 3, "lut": 4, "gelu_shift": 5,
         "exp": 6, "softmax": 7, "attention": 8, "mlp": 9, "patch_embed": 10}
MAGIC = 0x54565654  # "TVVT"
HEADER = "custom_ops/tests/vector_kinds.h"


def c_header() -> str:
    """vector_kinds.h: the tape's magic and kernel kinds, for vector_tests.c."""
    lines = ["// Generated from tflm_vit/twins/vectors.py (`python -m tflm_vit.twins.vectors",
             f"// --header {HEADER}`); do not edit: tests/test_options_header.py checks it",
             "// is current. The kernel kinds of the test-vector tape.",
             "#ifndef TFLM_VIT_TESTS_VECTOR_KINDS_H_", "#define TFLM_VIT_TESTS_VECTOR_KINDS_H_",
             "", f"#define TV_VECTORS_MAGIC 0x{MAGIC:08X}u", "", "enum {"]
    lines += [f"  KIND_{name.upper()} = {kind}," for name, kind in KINDS.items()]
    lines += ["};", "", "#endif  // TFLM_VIT_TESTS_VECTOR_KINDS_H_", ""]
    return "\n".join(lines)


class _Tape:
    def __init__(self):
        self.words: list[bytes] = []

    def i32(self, *values) -> None:
        for v in values:
            self.words.append(np.int32(int(v)).tobytes())

    def array(self, a) -> None:
        data = b"" if a is None else np.ascontiguousarray(a).tobytes()
        self.i32(len(data))
        self.words.append(data + b"\0" * (-len(data) % 4))

    def stage(self, s: L.Stage) -> None:
        self.i32(s.in_features, s.out_features, s.input_offset, s.output_offset)
        self.array(s.weights)
        self.array(None if s.bias is None else s.bias.astype(np.int32))
        self.array(s.multipliers.astype(np.int32))
        self.array(s.shifts.astype(np.int32))

    def bytes(self) -> bytes:
        return b"".join(self.words)


def _x(rng, *shape) -> np.ndarray:
    return rng.integers(-128, 128, shape).astype(np.int8)


def _stage(rng, n_in, n_out, bias=True, grows=False) -> L.Stage:
    """A random stage; `grows`: one channel's scale grows 2^20-fold (a left shift of 21,
    which overflows int32 for most accumulators: our requantisation saturates where
    CMSIS-NN's wraps), which must keep the CMSIS-NN build off its matrix path."""
    w, b = (rng.integers(-127, 128, (n_out, n_in)).astype(np.int8),
            rng.integers(-30000, 30000, n_out) if bias else None)
    in_scale, in_zp = rng.uniform(0.005, 0.1), int(rng.integers(-128, 128))
    w_scales, out_scale = rng.uniform(5e-4, 5e-3, n_out), rng.uniform(0.01, 0.2)
    if grows:
        w_scales[rng.integers(0, n_out)] = 2.0**20 * out_scale / in_scale
    return L.make_stage(w, b, in_scale, in_zp, w_scales, out_scale, int(rng.integers(-128, 128)))


def _case(rng, kind: str) -> tuple[_Tape, np.ndarray]:
    """One random case: its arguments and the NumPy twin's output."""
    t = _Tape()
    if kind in ("linear", "low_rank_linear"):
        tokens, n_in, n_out = (int(v) for v in rng.integers(1, 40, 3))
        x = _x(rng, tokens, n_in)
        t.i32(tokens, int(rng.integers(0, 2)))
        t.array(x)
        if kind == "linear":
            s = _stage(rng, n_in, n_out, bool(rng.integers(0, 2)), bool(rng.integers(0, 2)))
            t.stage(s)
            return t, L.linear_ref(x, s)
        u, v = _stage(rng, n_in, int(rng.integers(1, 16)), False), None
        v = _stage(rng, u.out_features, n_out)
        t.stage(u)
        t.stage(v)
        return t, L.low_rank_linear_ref(x, u, v)
    if kind == "layernorm":
        tokens, d = int(rng.integers(1, 10)), int(rng.integers(1, 200))
        p = LN.make_layernorm(rng.normal(1, 0.5, d), rng.normal(0, 0.5, d), 1e-6,
                              rng.uniform(1e-3, 0.2), rng.uniform(1e-3, 0.2),
                              int(rng.integers(-128, 128)), int(rng.integers(1, 6)))
        x = _x(rng, tokens, d)
        eps = int(p.eps_term)
        t.i32(int(rng.integers(0, 2)), tokens, d, p.output_zero_point, eps & 0xFFFFFFFF,
              eps >> 32, p.sqrt_iterations)
        t.array(x)
        t.array(p.multipliers.astype(np.int32))
        t.array(p.shifts.astype(np.int32))
        t.array(p.bias.astype(np.int32))
        return t, LN.layernorm_ref(x, p)
    if kind == "lut":
        table = G.gelu_table(rng.uniform(1e-3, 0.2), int(rng.integers(-128, 128)),
                             rng.uniform(1e-3, 0.2), int(rng.integers(-128, 128)))
        x = np.arange(-128, 128).astype(np.int8)
        t.array(table)
        t.array(x)
        return t, G.lut_ref(x, table)
    if kind == "gelu_shift":
        p = G.make_gelu_shift(rng.uniform(1e-3, 0.2), int(rng.integers(-128, 128)),
                              rng.uniform(1e-3, 0.2), int(rng.integers(-128, 128)))
        x = np.arange(-128, 128).astype(np.int8)
        t.i32(p.input_zero_point, p.output_zero_point, *p.to_q16, *p.to_out)
        t.array(x)
        return t, G.gelu_shift_ref(x, p)
    if kind == "exp":
        x = np.concatenate([rng.integers(-2**31, 1, 48), rng.integers(-2**21, 1, 48)])
        x = x.astype(np.int32)
        t.array(x)
        return t, fp.exp_q16_to_q30(x).astype(np.int32)
    if kind == "softmax":
        rows, n = int(rng.integers(1, 6)), int(rng.integers(1, 80))
        scores = rng.integers(-20000, 20000, (rows, n)).astype(np.int32)
        m, s = fp.quantize_multiplier(rng.uniform(1e-6, 1e-2) * 2**16)
        t.i32(rows, n, m, s)
        t.array(scores)
        return t, S.softmax_rows_q15_ref(scores, m, s).astype(np.int32)
    if kind == "attention":
        tokens, heads, dh = int(rng.integers(1, 40)), int(rng.integers(1, 5)), int(rng.integers(1, 24))
        w = heads * dh
        q, k, v = _x(rng, tokens, w), _x(rng, tokens, w), _x(rng, tokens, w)
        quants = [(float(rng.uniform(0.005, 0.1)), int(rng.integers(-128, 128))) for _ in range(4)]
        p = A.make_attention(heads, quants[0], quants[1], quants[2], dh ** -0.5, quants[3])
        t.i32(int(rng.integers(0, 2)), tokens, heads, dh, p.q_offset, p.k_offset, p.v_offset,
              *p.score_to_q16, *p.out_multiplier, p.output_offset)
        for a in (q, k, v):
            t.array(a)
        return t, A.attention_ref(q, k, v, p)
    if kind == "mlp":
        tokens, d, hidden, rank = (int(rng.integers(1, 10)), int(rng.integers(1, 32)),
                                   int(rng.integers(1, 64)), int(rng.integers(1, 8)))
        low_up, low_down = bool(rng.integers(0, 2)), bool(rng.integers(0, 2))
        up = [_stage(rng, d, rank, False), _stage(rng, rank, hidden)] if low_up \
            else [_stage(rng, d, hidden)]
        down = [_stage(rng, hidden, rank, False), _stage(rng, rank, d)] if low_down \
            else [_stage(rng, hidden, d)]
        table, x = _x(rng, 256), _x(rng, tokens, d)
        t.i32(int(rng.integers(0, 2)), tokens, len(up), len(down))
        t.array(x)
        t.array(table)
        for s in up + down:
            t.stage(s)
        return t, M.mlp_ref(x, up, table, down)
    if kind == "patch_embed":
        # Half the cases overwrite the image, as the planner lays them out.
        patch = int(rng.choice([1, 2, 4, 8, 16]))
        gh, gw, c, d = (int(v) for v in (rng.integers(1, 5), rng.integers(1, 6),
                                          rng.integers(1, 5), rng.integers(1, 24)))
        img = _x(rng, gh * patch, gw * patch, c)
        w = rng.integers(-127, 128, (d, patch, patch, c)).astype(np.int8)
        b = rng.integers(-5000, 5000, d).astype(np.int32) if rng.integers(0, 2) else None
        mult, shift = fp.quantize_multipliers(rng.uniform(1e-4, 1e-2, d))
        zi, zo = int(rng.integers(-127, 129)), int(rng.integers(-128, 128))
        split, lead = PE.overwrite_layout(gh * patch, gw * patch, c, patch, d)
        in_place = int(lead != PE.NO_OVERWRITE and rng.integers(0, 2))
        if not in_place:
            split = int(rng.integers(0, gw + 1))
        t.i32(in_place, gh * patch, gw * patch, c, patch, d, split, lead, zi, zo)
        for a in (img, w, b, mult.astype(np.int32), shift.astype(np.int32)):
            t.array(a)
        return t, PE.patch_embed_ref(img, w, b, mult, shift, zi, zo)
    raise ValueError(f"unknown kernel kind {kind!r}")


def write_vectors(path, cases_per_kernel: int = 12, seed: int = 0) -> int:
    """Writes the tape; returns the number of cases."""
    rng = np.random.default_rng(seed)
    out = _Tape()
    cases = [(kind, _case(rng, kind)) for kind in KINDS for _ in range(cases_per_kernel)]
    out.i32(MAGIC, 1, len(cases))
    for kind, (args, expected) in cases:
        body = args.bytes()
        out.i32(KINDS[kind], len(body))
        out.words.append(body)
        out.array(np.ascontiguousarray(expected))
    with open(path, "wb") as f:
        f.write(out.bytes())
    return len(cases)


if __name__ == "__main__":
    import argparse
    import pathlib
    ap = argparse.ArgumentParser(description="write the C header of the tape's kernel kinds")
    ap.add_argument("--header", required=True, help=f"output path (the repo's: {HEADER})")
    pathlib.Path(ap.parse_args().header).write_text(c_header())
