#include "tv_fixed_point.h"

#include <math.h>

int32_t tv_rounding_doubling_high_mul(int32_t a, int32_t b) {
  return tv_rounding_doubling_high_mul_inline(a, b);
}

int32_t tv_rounding_divide_by_pot(int32_t x, int exponent) {
  return tv_rounding_divide_by_pot_inline(x, exponent);
}

// x * 2^shift (shift >= 0) in 64 bits, saturated to int32: large shifts never overflow
// silently.
static int32_t saturating_left_shift(int32_t x, int shift) {
  int64_t shifted = (int64_t)x * ((int64_t)1 << shift);
  if (shifted > INT32_MAX) shifted = INT32_MAX;
  if (shifted < INT32_MIN) shifted = INT32_MIN;
  return (int32_t)shifted;
}

int32_t tv_requantize_left(int32_t x, int32_t multiplier, int32_t shift) {
  return tv_high_mul_unsaturated(saturating_left_shift(x, shift), multiplier);
}

int32_t tv_requantize(int32_t x, tv_quant_multiplier q) {
  if (q.multiplier == INT32_MIN) {  // the one case the inline form leaves out
    const int left = q.shift > 0 ? q.shift : 0;
    return tv_rounding_divide_by_pot_inline(
        tv_rounding_doubling_high_mul_inline(saturating_left_shift(x, left), q.multiplier),
        q.shift > 0 ? 0 : -q.shift);
  }
  return tv_requantize_inline(x, q.multiplier, q.shift);
}

tv_status tv_quantize_multiplier(double real, tv_quant_multiplier* out) {
  if (!(real >= 0.0) || !isfinite(real) || real >= 2147483648.0) return TV_ARG_ERROR;
  if (real == 0.0) {
    out->multiplier = 0;
    out->shift = 0;
    return TV_OK;
  }
  int shift = 0;
  const double fraction = frexp(real, &shift);  // real = fraction * 2^shift
  int64_t q = (int64_t)llround(fraction * (double)(1LL << 31));
  if (q == (1LL << 31)) {
    q /= 2;
    ++shift;
  }
  if (shift < -31) {  // too small to represent: flush to zero, like TFLite
    shift = 0;
    q = 0;
  }
  if (shift > 30) return TV_ARG_ERROR;
  out->multiplier = (int32_t)q;
  out->shift = shift;
  return TV_OK;
}

uint32_t tv_isqrt_newton(uint64_t x, int iterations) {
  if (x == 0) return 0;
  int bits = 0;
  while (bits < 64 && (x >> bits) != 0) ++bits;
  uint64_t r = (uint64_t)1 << ((bits + 1) / 2);  // >= sqrt(x)
  for (int i = 0; i < iterations; ++i) {
    const uint64_t next = (r + x / r) / 2;
    if (next >= r) break;  // converged: floor(sqrt(x)) reached
    r = next;
  }
  return (uint32_t)r;
}
