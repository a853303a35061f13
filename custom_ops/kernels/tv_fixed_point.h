// Fixed-point helpers used by every kernel: TFLite's requantisation (rounding
// doubling high multiply, then rounding right shift) and an integer square root
// by a fixed number of Newton iterations (MCUFormer's LayerNorm uses 3-4).
#ifndef TFLM_VIT_KERNELS_TV_FIXED_POINT_H_
#define TFLM_VIT_KERNELS_TV_FIXED_POINT_H_

#include <stdint.h>

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

// (a * b * 2) >> 32 with round-half-away-from-zero; saturates INT32_MIN * INT32_MIN.
int32_t tv_rounding_doubling_high_mul(int32_t a, int32_t b);

// x / 2^exponent rounded half away from zero (exponent in [0, 31]).
int32_t tv_rounding_divide_by_pot(int32_t x, int exponent);

// x * M with M = q.multiplier * 2^(q.shift - 31): TFLite's
// MultiplyByQuantizedMultiplier (double rounding), shift in [-31, 30].
int32_t tv_requantize(int32_t x, tv_quant_multiplier q);

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
