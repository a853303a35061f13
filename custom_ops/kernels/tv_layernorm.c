#include "tv_layernorm.h"

#include "tv_dot.h"
#include "tv_fixed_point.h"

static int8_t clamp_s8(int32_t v) { return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v)); }

tv_status tv_layernorm_validate(const tv_layernorm_params* p, const char** what) {
  TV_REQUIRE(p != NULL, "params are NULL");
  TV_REQUIRE(p->tokens > 0, "tokens must be > 0");
  // sum d^2 <= D^3 * 255^2 must fit 64 bits with room for eps: D <= 16384.
  TV_REQUIRE(p->channels > 0 && p->channels <= 16384, "channels must be in [1, 16384]");
  TV_REQUIRE(p->output_zero_point >= -128 && p->output_zero_point <= 127,
             "output_zero_point must be in [-128, 127]");
  TV_REQUIRE(p->eps_term >= 0 && p->eps_term < ((int64_t)1 << 62), "eps_term out of range");
  TV_REQUIRE(p->sqrt_iterations >= 1 && p->sqrt_iterations <= 64,
             "sqrt_iterations must be in [1, 64]");
  TV_REQUIRE(p->multipliers && p->shifts && p->bias, "requantisation table or bias is NULL");
  for (int32_t c = 0; c < p->channels; ++c) {
    TV_REQUIRE(p->shifts[c] >= -31 && p->shifts[c] <= 0, "shift outside [-31, 0]");
    TV_REQUIRE(p->multipliers[c] != INT32_MIN, "multiplier must not be INT32_MIN");
  }
  return TV_OK;
}

size_t tv_layernorm_scratch_size(const tv_layernorm_params* p) {
  (void)p;
  return 0;
}

tv_status tv_layernorm_run_s8(const tv_layernorm_params* p, const int8_t* input, int8_t* output,
                              const char** what) {
  TV_REQUIRE(input != NULL && output != NULL, "input and output must not be NULL");
  const int32_t d = p->channels;
  for (int32_t t = 0; t < p->tokens; ++t) {
    const int8_t* x = input + (size_t)t * d;
    int8_t* y = output + (size_t)t * d;
    // sum_c (D x_c - S)^2 = D (D sum x^2 - S^2): one pass over the token for S and
    // sum x^2 (< 2^28 for D <= 16384), then 64-bit arithmetic once per token.
    int32_t sum = 0, sum_sq = 0;
    int32_t c = 0;
#if defined(TV_DOT_DSP)
    const uint32_t ones = 0x00010001u;
    for (; c + 4 <= d; c += 4) {  // two values per SMLAD
      const int32_t v = arm_nn_read_s8x4(x + c);
      const int32_t v02 = SXTB16(v), v13 = SXTB16_RORn((uint32_t)v, 8);
      sum_sq = SMLAD(v02, v02, sum_sq);
      sum_sq = SMLAD(v13, v13, sum_sq);
      sum = SMLAD(v02, ones, sum);
      sum = SMLAD(v13, ones, sum);
    }
#endif
    for (; c < d; ++c) {
      sum += x[c];
      sum_sq += (int32_t)x[c] * x[c];
    }
    const uint64_t ss =
        (uint64_t)((int64_t)d * ((int64_t)d * sum_sq - (int64_t)sum * (int64_t)sum));
    const uint32_t r = tv_isqrt_newton(ss + (uint64_t)p->eps_term, p->sqrt_iterations);
    // One 64-bit division per token; per channel only a multiply and shifts.
    const int64_t inv = r ? (int64_t)(((uint64_t)1 << 62) / r) : 0;
    // Every input value of the token is read above before any output is written,
    // and y[c] depends on x[c] only: in place is safe.
    for (c = 0; c < d; ++c) {
      const int64_t dev = (int64_t)d * x[c] - sum;
      // |dev| <= r, so |dev * inv| <= 2^62 and |norm| <= 2^30.
      const int32_t norm = (int32_t)((dev * inv + ((int64_t)1 << 31)) >> 32);
      // output LSB * 2^8
      const int32_t fine = tv_requantize_inline(norm, p->multipliers[c], p->shifts[c]) + p->bias[c];
      y[c] = clamp_s8(p->output_zero_point + ((fine + 128) >> 8));
    }
  }
  return TV_OK;
}

tv_status tv_layernorm_s8(const tv_layernorm_params* p, const int8_t* input, int8_t* output,
                          const char** what) {
  if (tv_layernorm_validate(p, what) != TV_OK) return TV_ARG_ERROR;
  return tv_layernorm_run_s8(p, input, output, what);
}
