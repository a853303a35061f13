// Fixed-point helpers used by every kernel: TFLite's requantisation (rounding
// doubling high multiply, then rounding right shift) and an integer square root
// by a fixed number of Newton iterations (MCUFormer's LayerNorm uses 3-4).
#ifndef TFLM_VIT_KERNELS_TV_FIXED_POINT_H_
#define TFLM_VIT_KERNELS_TV_FIXED_POINT_H_

#include <stdint.h>

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#include <arm_acle.h>
#endif

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

// (a * b * 2) >> 32 with round-half-away-from-zero; saturates INT32_MIN * INT32_MIN.
int32_t tv_rounding_doubling_high_mul(int32_t a, int32_t b);

// x / 2^exponent rounded half away from zero (exponent in [0, 31]).
int32_t tv_rounding_divide_by_pot(int32_t x, int exponent);

// x * M with M = q.multiplier * 2^(q.shift - 31): TFLite's
// MultiplyByQuantizedMultiplier (double rounding), shift in [-31, 30]. The left shift
// saturates (TFLite's overflows).
int32_t tv_requantize(int32_t x, tv_quant_multiplier q);

// The same three, inline for the kernels' inner loops (the functions above call these:
// one definition).

// round(a * b / 2^31) for b != INT32_MIN. gemmlowp adds 2^30 (ab >= 0) or 1 - 2^30
// (ab < 0) and divides by 2^31 truncating toward zero; floor((ab + 2^30) / 2^31) is the
// same integer for every ab (for ab = -k < 0 both are -floor((k + 2^30 - 1) / 2^31)) and
// is one shift, as CMSIS-NN's arm_nn_doubling_high_mult_no_sat computes it.
static inline int32_t tv_high_mul_unsaturated(int32_t a, int32_t b) {
  return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

static inline int32_t tv_rounding_doubling_high_mul_inline(int32_t a, int32_t b) {
  if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
  return tv_high_mul_unsaturated(a, b);
}

static inline int32_t tv_rounding_divide_by_pot_inline(int32_t x, int exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// tv_requantize with a left shift (shift > 0), for a multiplier other than INT32_MIN:
// out of line, so the inner loops do not compute it speculatively (multipliers >= 1 are
// rare: a scale that grows).
int32_t tv_requantize_left(int32_t x, int32_t multiplier, int32_t shift);

// tv_requantize for a multiplier other than INT32_MIN (validated by every kernel).
static inline int32_t tv_requantize_inline(int32_t x, int32_t multiplier, int32_t shift) {
  if (__builtin_expect(shift > 0, 0)) return tv_requantize_left(x, multiplier, shift);
  return tv_rounding_divide_by_pot_inline(tv_high_mul_unsaturated(x, multiplier), -shift);
}

// clamp(requantize(acc) + offset) to int8: the last step of every int8 output.
static inline int8_t tv_requantize_s8(int32_t acc, int32_t multiplier, int32_t shift,
                                      int32_t offset) {
  const int32_t v = tv_requantize_inline(acc, multiplier, shift) + offset;
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
  return (int8_t)__ssat(v, 8);  // one SSAT instead of two compares and branches
#else
  return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
#endif
}

// Encodes a real multiplier (>= 0, < 2^31) as multiplier/shift. TV_ARG_ERROR for a
// negative, non-finite or too large value.
tv_status tv_quantize_multiplier(double real, tv_quant_multiplier* out);

// Integer square root by at most `iterations` Newton steps r <- (r + x / r) / 2 from
// r = 2^ceil(bits(x)/2) >= sqrt(x). The iterates fall monotonically and stop at
// floor(sqrt(x)); fewer iterations leave an over-estimate (the error table in
// bench/ measures how much, per iteration count).
uint32_t tv_isqrt_newton(uint64_t x, int iterations);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_FIXED_POINT_H_
