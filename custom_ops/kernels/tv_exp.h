// Integer exp for x <= 0 (I-BERT's i-exp): x = -z ln2 + p with p in (-ln2, 0],
// exp(p) ~ 0.3585 (p + 1.353)^2 + 0.344, exp(x) = exp(p) >> z. Shared by the
// softmax and the arithmetic GELU. Integer constants are part of the contract:
// the NumPy reference uses the same ones.
#ifndef TFLM_VIT_KERNELS_TV_EXP_H_
#define TFLM_VIT_KERNELS_TV_EXP_H_

#include <stdint.h>

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TV_EXP_LN2_Q16 45426          // round(ln 2 * 2^16)
#define TV_EXP_B_Q16 88670            // round(1.353 * 2^16)
#define TV_EXP_A_Q16 23495            // round(0.3585 * 2^16)
#define TV_EXP_C_Q30 369367188        // round(0.344 * 2^30)
#define TV_EXP_MAX_SHIFT 30           // below exp(-30 ln2) the result is 0

// exp(x / 2^16) * 2^30 for x <= 0 (x > 0 is treated as 0).
int32_t tv_exp_q16_to_q30(int32_t x);

// The same, inline for the softmax's inner loop (the function above calls it). The
// division is 32-bit by a constant (a multiply, no library call): |x| <= 2^31.
static inline int32_t tv_exp_q16_to_q30_inline(int32_t x) {
  if (x > 0) x = 0;
  const uint32_t neg = (uint32_t)0 - (uint32_t)x;
  const uint32_t z = neg / TV_EXP_LN2_Q16;
  if (z > TV_EXP_MAX_SHIFT) return 0;
  const int32_t p = x + (int32_t)(z * TV_EXP_LN2_Q16);  // (-ln2, 0] in Q16
  const uint32_t pb = (uint32_t)(p + TV_EXP_B_Q16);     // (0, 2^17)
  const uint64_t sq = (uint64_t)pb * pb;                // < 2^34
  const int64_t e = (int64_t)((TV_EXP_A_Q16 * sq) >> 18) + TV_EXP_C_Q30;  // Q48 -> Q30
  return (int32_t)(e >> z);
}

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_EXP_H_
