#include "tv_gelu.h"

#include "tv_exp.h"
#include "tv_fixed_point.h"

static int8_t clamp_s8(int32_t v) { return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v)); }

tv_status tv_lut_s8(const int8_t* lut, const int8_t* input, int8_t* output, int32_t count,
                    const char** what) {
  TV_REQUIRE(lut != NULL, "lookup table must not be NULL");
  TV_REQUIRE(input != NULL && output != NULL, "input and output must not be NULL");
  TV_REQUIRE(count >= 0, "count must be >= 0");
  for (int32_t i = 0; i < count; ++i) output[i] = lut[(int32_t)input[i] + 128];
  return TV_OK;
}

tv_status tv_gelu_shift_s8(const tv_gelu_shift_params* p, const int8_t* input,
                           int8_t* output, int32_t count, const char** what) {
  TV_REQUIRE(p != NULL, "params are NULL");
  TV_REQUIRE(input != NULL && output != NULL, "input and output must not be NULL");
  TV_REQUIRE(count >= 0, "count must be >= 0");
  TV_REQUIRE(p->input_zero_point >= -128 && p->input_zero_point <= 127,
             "input_zero_point must be in [-128, 127]");
  TV_REQUIRE(p->output_zero_point >= -128 && p->output_zero_point <= 127,
             "output_zero_point must be in [-128, 127]");
  TV_REQUIRE(p->to_q16.multiplier >= 0 && p->to_out.multiplier >= 0,
             "multipliers must be >= 0");
  TV_REQUIRE(p->to_q16.shift >= -31 && p->to_q16.shift <= 30 && p->to_out.shift >= -31 &&
                 p->to_out.shift <= 30,
             "shift outside [-31, 30]");
  for (int32_t i = 0; i < count; ++i) {
    const int32_t x = (int32_t)input[i] - p->input_zero_point;
    const int32_t z = tv_requantize(x, p->to_q16);  // 1.702 x in Q16
    const int32_t e = tv_exp_q16_to_q30(z > 0 ? -z : z);  // exp(-|z|) in Q30
    // sigmoid(|z|) = 1 / (1 + e) in Q30; sigmoid(-|z|) = 1 - sigmoid(|z|).
    const int64_t pos = (int64_t)(((uint64_t)1 << 60) / (((uint64_t)1 << 30) + (uint64_t)e));
    const int64_t sig = z >= 0 ? pos : ((int64_t)1 << 30) - pos;
    const int32_t sig_q22 = (int32_t)((sig + 128) >> 8);  // |x * sig_q22| < 2^31
    output[i] = clamp_s8(tv_requantize(x * sig_q22, p->to_out) + p->output_zero_point);
  }
  return TV_OK;
}
