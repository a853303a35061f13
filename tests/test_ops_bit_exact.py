"""Every portable kernel against its NumPy reference (tflm_vit/twins), bit for bit, over
random shapes and quantisation parameters; in place (token overwriting) and out of
place alike; bad shapes and parameters rejected with a message naming them."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tflm_vit import _kernels as K
from tflm_vit.twins import attention as A
from tflm_vit.twins import fixed_point as fp
from tflm_vit.twins import gelu as G
from tflm_vit.twins import layernorm as LN
from tflm_vit.twins import linear as L
from tflm_vit.twins import mlp as M
from tflm_vit.twins import patch_embed as PE
from tflm_vit.twins import softmax as S

SCALE = st.floats(1e-3, 0.2)
ZP = st.integers(-128, 127)
SEED = st.integers(0, 2**32 - 1)
FAST = settings(max_examples=150, deadline=None)


def _stage(rng, n_in, n_out, bias=True):
    return L.make_stage(rng.integers(-127, 128, (n_out, n_in)).astype(np.int8),
                        rng.integers(-30000, 30000, n_out) if bias else None,
                        rng.uniform(0.005, 0.1), int(rng.integers(-128, 128)),
                        rng.uniform(5e-4, 5e-3, n_out), rng.uniform(0.01, 0.2),
                        int(rng.integers(-128, 128)))


def _x(rng, *shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


@FAST
@given(SEED, st.integers(1, 12), st.integers(1, 48), st.integers(1, 48), st.booleans(),
       st.booleans())
def test_linear(seed, tokens, n_in, n_out, bias, in_place):
    rng = np.random.default_rng(seed)
    s, x = _stage(rng, n_in, n_out, bias), _x(rng, tokens, n_in)
    assert np.array_equal(K.linear(x, s.as_tuple(), in_place), L.linear_ref(x, s))


@FAST
@given(SEED, st.integers(1, 12), st.integers(1, 48), st.integers(1, 16), st.integers(1, 48),
       st.booleans())
def test_low_rank_linear(seed, tokens, n_in, rank, n_out, in_place):
    rng = np.random.default_rng(seed)
    u, v, x = _stage(rng, n_in, rank, False), _stage(rng, rank, n_out), _x(rng, tokens, n_in)
    got = K.low_rank_linear(x, u.as_tuple(), v.as_tuple(), in_place)
    assert np.array_equal(got, L.low_rank_linear_ref(x, u, v))


@FAST
@given(SEED, st.integers(1, 10), st.integers(1, 256), SCALE, SCALE, ZP, st.integers(1, 6),
       st.booleans())
def test_layernorm(seed, tokens, d, sx, sy, zy, iterations, in_place):
    rng = np.random.default_rng(seed)
    p = LN.make_layernorm(rng.normal(1, 0.5, d), rng.normal(0, 0.5, d), 1e-6, sx, sy, zy,
                          iterations)
    x = _x(rng, tokens, d)
    got = K.layernorm(x, p.output_zero_point, p.eps_term, p.sqrt_iterations, p.multipliers,
                      p.shifts, p.bias, in_place)
    assert np.array_equal(got, LN.layernorm_ref(x, p))


@FAST
@given(SCALE, ZP, SCALE, ZP)
def test_gelu_table_and_shift(sx, zx, sy, zy):
    x = np.arange(-128, 128).astype(np.int8)
    table = G.gelu_table(sx, zx, sy, zy)
    assert np.array_equal(K.lut(x, table), G.lut_ref(x, table))
    p = G.make_gelu_shift(sx, zx, sy, zy)
    got = K.gelu_shift(x, p.input_zero_point, p.output_zero_point, p.to_q16, p.to_out)
    assert np.array_equal(got, G.gelu_shift_ref(x, p))


@FAST
@given(st.lists(st.integers(-2**31, 0), min_size=1, max_size=64))
def test_integer_exp(xs):
    x = np.array(xs, np.int32)
    assert np.array_equal(K.exp_q16_to_q30(x), fp.exp_q16_to_q30(x))


@FAST
@given(SEED, st.integers(1, 8), st.integers(1, 80), st.floats(1e-6, 1e-2))
def test_softmax(seed, rows, n, real_scale):
    rng = np.random.default_rng(seed)
    scores = rng.integers(-2**31, 2**31, (rows, n)).astype(np.int32) if seed % 3 == 0 else \
        rng.integers(-20000, 20000, (rows, n)).astype(np.int32)
    m, s = fp.quantize_multiplier(real_scale * 2**16)
    assert np.array_equal(K.softmax_rows_q15(scores, m, s), S.softmax_rows_q15_ref(scores, m, s))


@FAST
@given(SEED, st.integers(1, 40), st.sampled_from([1, 2, 3, 4]), st.integers(1, 24),
       st.booleans())
def test_attention(seed, tokens, heads, head_dim, in_place):
    rng = np.random.default_rng(seed)
    w = heads * head_dim
    q, k, v = _x(rng, tokens, w), _x(rng, tokens, w), _x(rng, tokens, w)
    quants = [(float(rng.uniform(0.005, 0.1)), int(rng.integers(-128, 128))) for _ in range(4)]
    p = A.make_attention(heads, quants[0], quants[1], quants[2], head_dim ** -0.5, quants[3])
    got = K.attention(q, k, v, heads, (p.q_offset, p.k_offset, p.v_offset), p.score_to_q16,
                      p.out_multiplier, p.output_offset, in_place)
    assert np.array_equal(got, A.attention_ref(q, k, v, p))


@FAST
@given(SEED, st.integers(1, 10), st.integers(1, 32), st.integers(1, 64), st.integers(1, 8),
       st.booleans(), st.booleans(), st.booleans())
def test_mlp(seed, tokens, d, hidden, rank, low_up, low_down, in_place):
    rng = np.random.default_rng(seed)
    up = [_stage(rng, d, rank, False), _stage(rng, rank, hidden)] if low_up \
        else [_stage(rng, d, hidden)]
    down = [_stage(rng, hidden, rank, False), _stage(rng, rank, d)] if low_down \
        else [_stage(rng, hidden, d)]
    table = _x(rng, 256)
    x = _x(rng, tokens, d)
    got = K.mlp(x, [s.as_tuple() for s in up], table, [s.as_tuple() for s in down], in_place)
    assert np.array_equal(got, M.mlp_ref(x, up, table, down))


@FAST
@given(SEED, st.sampled_from([1, 2, 4, 8, 16]), st.integers(1, 4), st.integers(1, 5),
       st.integers(1, 4), st.integers(1, 40), st.booleans())
def test_patch_embed_in_every_order_and_over_its_image(seed, patch, gh, gw, c, d, bias):
    rng = np.random.default_rng(seed)
    img = _x(rng, gh * patch, gw * patch, c)
    w = rng.integers(-127, 128, (d, patch, patch, c)).astype(np.int8)
    b = rng.integers(-5000, 5000, d) if bias else None
    mult, shift = fp.quantize_multipliers(rng.uniform(1e-4, 1e-2, d))
    zi, zo = int(rng.integers(-127, 129)), int(rng.integers(-128, 128))
    want = PE.patch_embed_ref(img, w, b, mult, shift, zi, zo)
    for split in range(gw + 1):
        assert np.array_equal(K.patch_embed(img, w, b, mult, shift, zi, zo, split), want)
    split, lead = PE.overwrite_layout(gh * patch, gw * patch, c, patch, d)
    if lead != PE.NO_OVERWRITE:
        got = K.patch_embed(img, w, b, mult, shift, zi, zo, split, lead, in_place=True)
        assert np.array_equal(got, want)


def _simulate_overwrite(h, w, c, p, d, split, lead) -> bool:
    """Byte by byte, in the kernel's order: does any token land on image bytes a later
    token still reads? (Independent of overwrite_layout's own check.)"""
    gw = w // p
    order = PE.token_order(h // p, gw, split)
    owner = np.empty((h, w), np.int64)  # token reading each pixel
    for y in range(h):
        for x in range(w):
            owner[y, x] = (y // p) * gw + x // p
    step_of = {int(t): k for k, t in enumerate(order)}
    last_read = np.repeat(np.vectorize(step_of.get)(owner).reshape(-1), c)
    for k, t in enumerate(order):
        lo, hi = max(0, t * d - lead), min(h * w * c, (t + 1) * d - lead)
        if lo < hi and last_read[lo:hi].max() > k:
            return False
    return True


@pytest.mark.parametrize("shape", [(16, 16, 3, 4, 40), (12, 20, 1, 4, 10), (24, 24, 3, 8, 100),
                                   (14, 28, 1, 7, 32), (32, 32, 3, 4, 47)])
def test_overwrite_layout_is_the_least_safe_lead(shape):
    h, w, c, p, d = shape
    split, lead = PE.overwrite_layout(*shape)
    assert lead != PE.NO_OVERWRITE and lead % 16 == 0
    assert _simulate_overwrite(h, w, c, p, d, split, lead)
    # No smaller lead is safe with any split.
    for s in range(w // p + 1):
        for smaller in range(0, lead, 16):
            assert not _simulate_overwrite(h, w, c, p, d, s, smaller)


def test_no_overwrite_when_tokens_outgrow_their_image_rows():
    # R0's stem: 64 outputs from 4 x 4 x 3 = 48 image bytes per patch.
    assert PE.overwrite_layout(32, 32, 3, 4, 64) == (0, PE.NO_OVERWRITE)
    assert PE.overwrite_layout(32, 32, 3, 4, 48)[1] == PE.NO_OVERWRITE
    # R2's stem: the tokens start 1,200 bytes before the image.
    assert PE.overwrite_layout(240, 240, 3, 16, 160) == (10, 1200)


def test_patch_embed_refuses_an_overlap_it_was_not_laid_out_for():
    rng = np.random.default_rng(0)
    img, w = _x(rng, 8, 8, 3), rng.integers(-127, 128, (8, 4, 4, 3)).astype(np.int8)
    mult, shift = fp.quantize_multipliers(np.full(8, 1e-3))
    with pytest.raises(ValueError, match="output_lead given but out_channels >= patch"):
        K.patch_embed(img, np.zeros((48, 4, 4, 3), np.int8), None, np.ones(48, np.int32),
                      np.zeros(48, np.int32), 0, 0, 0, 0, in_place=True)
    split, lead = PE.overwrite_layout(8, 8, 3, 4, 8)
    with pytest.raises(ValueError, match="overlaps the image other than output_lead"):
        # Told one lead, laid out with another.
        K.patch_embed(img, w, None, mult, shift, 0, 0, split, lead, in_place=True,
                      placed_lead=lead + 16)


def test_bad_shapes_and_parameters_are_named():
    rng = np.random.default_rng(0)
    s = _stage(rng, 8, 4)
    with pytest.raises(ValueError, match="input features differ"):
        K.linear(_x(rng, 3, 7), s.as_tuple())
    bad = L.Stage(s.weights, s.bias, s.multipliers, np.full(4, 31, np.int32), 0, 0)
    with pytest.raises(ValueError, match="linear: shift outside"):
        K.linear(_x(rng, 3, 8), bad.as_tuple())
    bad = L.Stage(s.weights, s.bias, s.multipliers, s.shifts, 300, 0)
    with pytest.raises(ValueError, match="input_offset"):
        K.linear(_x(rng, 3, 8), bad.as_tuple())
    with pytest.raises(ValueError, match="first_band_split must be in"):
        w = np.zeros((2, 4, 4, 1), np.int8)
        K.patch_embed(np.zeros((8, 8, 1), np.int8), w, None, np.ones(2, np.int32),
                      np.zeros(2, np.int32), 0, 0, 3)
    with pytest.raises(ValueError, match="height must be a multiple of patch"):
        K.patch_embed(np.zeros((6, 8, 1), np.int8), np.zeros((2, 4, 4, 1), np.int8), None,
                      np.ones(2, np.int32), np.zeros(2, np.int32), 0, 0, 1)
    with pytest.raises(ValueError, match="sqrt_iterations"):
        K.layernorm(_x(rng, 2, 4), 0, 0, 0, np.ones(4, np.int32), np.zeros(4, np.int32),
                    np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="heads must divide"):
        K.attention(_x(rng, 4, 6), _x(rng, 4, 6), _x(rng, 4, 6), 4, (0, 0, 0), (1, 0), (1, 0), 0)
    with pytest.raises(ValueError, match="up stages do not chain|hidden width"):
        K.mlp(_x(rng, 2, 8), [_stage(rng, 8, 5).as_tuple()], _x(rng, 256),
              [_stage(rng, 6, 8).as_tuple()])
