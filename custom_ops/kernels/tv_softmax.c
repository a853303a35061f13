#include "tv_softmax.h"

#include "tv_exp.h"
#include "tv_fixed_point.h"

tv_status tv_softmax_row_q15(int32_t* row, int32_t n, tv_quant_multiplier to_q16,
                             const char** what) {
  TV_REQUIRE(row != NULL, "row must not be NULL");
  TV_REQUIRE(n > 0, "row length must be > 0");
  TV_REQUIRE(to_q16.multiplier >= 0, "score multiplier must be >= 0");
  TV_REQUIRE(to_q16.shift >= -31 && to_q16.shift <= 30, "score shift outside [-31, 30]");
  int32_t max = row[0];
  for (int32_t j = 1; j < n; ++j) max = row[j] > max ? row[j] : max;
  int64_t sum = 0;
  for (int32_t j = 0; j < n; ++j) {
    // Difference in 64 bits, clamped: scores of opposite extremes cannot overflow.
    int64_t diff = (int64_t)row[j] - max;
    if (diff < INT32_MIN) diff = INT32_MIN;
    row[j] = tv_exp_q16_to_q30_inline(tv_requantize_inline((int32_t)diff, to_q16.multiplier, to_q16.shift));
    sum += row[j];
  }
  // The maximum contributes exp(0) ~ 2^30, so sum >= 2^30 and inv <= 2^32.
  const int64_t inv = (int64_t)(((uint64_t)1 << 62) / (uint64_t)sum);
  for (int32_t j = 0; j < n; ++j) {
    row[j] = (int32_t)(((int64_t)row[j] * inv + ((int64_t)1 << 46)) >> 47);
  }
  return TV_OK;
}
