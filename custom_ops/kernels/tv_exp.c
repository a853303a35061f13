#include "tv_exp.h"

int32_t tv_exp_q16_to_q30(int32_t x) {
  if (x > 0) x = 0;
  const int64_t neg = -(int64_t)x;
  const int64_t z = neg / TV_EXP_LN2_Q16;
  if (z > TV_EXP_MAX_SHIFT) return 0;
  const int64_t p = (int64_t)x + z * TV_EXP_LN2_Q16;  // (-ln2, 0] in Q16
  const int64_t pb = p + TV_EXP_B_Q16;                // < 2^17
  const int64_t e = ((TV_EXP_A_Q16 * pb * pb) >> 18) + TV_EXP_C_Q30;  // Q48 -> Q30
  return (int32_t)(e >> z);
}
