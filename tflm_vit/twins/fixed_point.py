"""NumPy twins of custom_ops/kernels/tv_fixed_point.c and tv_exp.c, bit for bit.

Everything works on int64 arrays so intermediate products never wrap; results are
cast back where the C code has int32."""

from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _i64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.int64)


def rounding_doubling_high_mul(a, b) -> np.ndarray:
    a, b = np.broadcast_arrays(_i64(a), _i64(b))
    ab = a * b
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    num = ab + nudge
    # Truncating division (toward zero), as gemmlowp's reference does.
    q = np.where(num >= 0, num >> 31, -((-num) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, q)


def rounding_divide_by_pot(x, exponent) -> np.ndarray:
    x, e = np.broadcast_arrays(_i64(x), _i64(exponent))
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def requantize(x, multiplier, shift) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier; multiplier/shift broadcast against x
    (per-channel tables along the last axis)."""
    x, m, s = np.broadcast_arrays(_i64(x), _i64(multiplier), _i64(shift))
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)
    shifted = np.clip(x * (np.int64(1) << left), INT32_MIN, INT32_MAX)
    return rounding_divide_by_pot(rounding_doubling_high_mul(shifted, m), right)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Real multiplier -> (multiplier, shift), as tv_quantize_multiplier; a negative
    real gives a negative multiplier (used by LayerNorm's folded gamma)."""
    if not math.isfinite(real) or abs(real) >= 2.0**31:
        raise ValueError(f"real multiplier {real} must be finite and below 2^31 in magnitude")
    if real < 0:
        m, s = quantize_multiplier(-real)
        return -m, s
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(real)
    q = math.floor(fraction * 2.0**31 + 0.5)  # llround: half away from zero
    if q == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ValueError(f"real multiplier {real} too large (shift {shift} > 30)")
    return int(q), int(shift)


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.ravel(reals)]
    return (np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32))


def isqrt_newton(x, iterations: int) -> np.ndarray:
    """tv_isqrt_newton elementwise: Newton from 2^ceil(bits/2), at most `iterations`
    steps, stopping once the iterate stops falling."""
    out = []
    for v in np.ravel(np.asarray(x, dtype=np.uint64)).tolist():
        if v == 0:
            out.append(0)
            continue
        r = 1 << ((v.bit_length() + 1) // 2)
        for _ in range(iterations):
            nxt = (r + v // r) // 2
            if nxt >= r:
                break
            r = nxt
        out.append(r)
    return np.array(out, dtype=np.uint64).reshape(np.shape(x))


LN2_Q16 = 45426
EXP_B_Q16 = 88670
EXP_A_Q16 = 23495
EXP_C_Q30 = 369367188
EXP_MAX_SHIFT = 30


def exp_q16_to_q30(x) -> np.ndarray:
    """I-BERT's integer exp for x <= 0 (Q16 in, Q30 out), as tv_exp_q16_to_q30."""
    x = np.minimum(_i64(x), 0)
    z = (-x) // LN2_Q16
    p = x + z * LN2_Q16
    pb = p + EXP_B_Q16
    e = ((EXP_A_Q16 * pb * pb) >> 18) + EXP_C_Q30
    return np.where(z > EXP_MAX_SHIFT, 0, e >> np.minimum(z, EXP_MAX_SHIFT))


def clamp_s8(x) -> np.ndarray:
    return np.clip(x, -128, 127).astype(np.int8)


def quantize(x_float, scale: float, zero_point: int) -> np.ndarray:
    """Float-then-quantise (round half away from zero, as TFLite's QUANTIZE)."""
    v = np.asarray(x_float, np.float64) / scale
    return clamp_s8(np.sign(v) * np.floor(np.abs(v) + 0.5) + zero_point)


def dequantize(q, scale, zero_point) -> np.ndarray:
    return (np.asarray(q, np.float64) - zero_point) * scale
