"""Portable C kernels against their NumPy references, bit for bit."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tflm_vit import _kernels

I32 = st.integers(-2**31, 2**31 - 1)


def ref_rounding_doubling_high_mul(a, b):
    if a == b == -2**31:
        return 2**31 - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)  # C division truncates toward zero


def _trunc_div(n, d):
    q = abs(n) // d
    return q if n >= 0 else -q


def ref_rounding_divide_by_pot(x, e):
    mask = (1 << e) - 1
    rem = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > threshold else 0)


def ref_requantize(x, mult, shift):
    left, right = max(shift, 0), max(-shift, 0)
    v = min(max(x * (1 << left), -2**31), 2**31 - 1)
    return ref_rounding_divide_by_pot(ref_rounding_doubling_high_mul(v, mult), right)


@settings(max_examples=300, deadline=None)
@given(st.lists(I32, min_size=1, max_size=32), st.integers(2**30, 2**31 - 1),
       st.integers(-31, 30))
def test_requantize_bit_exact(xs, mult, shift):
    got = _kernels.requantize(np.array(xs, np.int32), mult, shift)
    assert got.tolist() == [ref_requantize(x, mult, shift) for x in xs]


@settings(max_examples=300, deadline=None)
@given(st.floats(1e-9, 1e6))
def test_quantize_multiplier_float_error(real):
    mult, shift = _kernels.quantize_multiplier(real)
    assert 2**30 <= mult < 2**31
    assert abs(mult * 2.0 ** (shift - 31) - real) <= real * 2**-30


def test_requantize_float_reference_error():
    rng = np.random.default_rng(0)
    for real in rng.uniform(1e-4, 4.0, 50):
        mult, shift = _kernels.quantize_multiplier(real)
        x = rng.integers(-2**20, 2**20, 1000).astype(np.int32)
        got = _kernels.requantize(x, mult, shift).astype(np.float64)
        assert np.max(np.abs(got - x * real)) <= 1.0  # at most one rounding step off


def test_isqrt_exact_with_enough_iterations():
    xs = np.concatenate([np.arange(0, 70000, dtype=np.uint64),
                         np.random.default_rng(0).integers(0, 2**62, 20000, dtype=np.uint64),
                         np.array([2**62 - 1, 2**32 - 1, 2**32], np.uint64)])
    got = _kernels.isqrt_newton(xs, 64)
    assert got.tolist() == [math.isqrt(int(x)) for x in xs]


def test_isqrt_few_iterations_over_estimate():
    xs = np.random.default_rng(1).integers(1, 2**31, 5000, dtype=np.uint64)
    exact = np.array([math.isqrt(int(x)) for x in xs])
    prev = None
    for it in range(0, 8):
        got = _kernels.isqrt_newton(xs, it).astype(np.int64)
        assert np.all(got >= exact)  # Newton from above never undershoots
        if prev is not None:
            assert np.all(got <= prev)
        prev = got
    assert np.array_equal(prev, exact)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="shift"):
        _kernels.requantize(np.zeros(2, np.int32), 2**30, 31)
    with pytest.raises(ValueError, match="real multiplier"):
        _kernels.quantize_multiplier(-1.0)
    with pytest.raises(ValueError, match="iterations"):
        _kernels.isqrt_newton(np.zeros(2, np.uint64), -1)
