#include "tv_attention.h"

#include <string.h>

#include "tv_fixed_point.h"
#include "tv_softmax.h"

static int8_t clamp_s8(int32_t v) { return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v)); }

static int overlaps(const void* a, size_t na, const void* b, size_t nb) {
  const uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
  return a0 < b0 + nb && b0 < a0 + na;
}

tv_status tv_attention_validate(const tv_attention_params* p, const char** what) {
  TV_REQUIRE(p != NULL, "params are NULL");
  TV_REQUIRE(p->tokens > 0 && p->tokens <= 65536, "tokens must be in [1, 65536]");
  TV_REQUIRE(p->heads > 0, "heads must be > 0");
  TV_REQUIRE(p->head_dim > 0 && p->head_dim <= 4096, "head_dim must be in [1, 4096]");
  TV_REQUIRE(p->q_offset >= -127 && p->q_offset <= 128, "q_offset must be in [-127, 128]");
  TV_REQUIRE(p->k_offset >= -127 && p->k_offset <= 128, "k_offset must be in [-127, 128]");
  TV_REQUIRE(p->v_offset >= -127 && p->v_offset <= 128, "v_offset must be in [-127, 128]");
  TV_REQUIRE(p->output_offset >= -128 && p->output_offset <= 127,
             "output_offset must be in [-128, 127]");
  TV_REQUIRE(p->score_to_q16.multiplier >= 0 && p->out_multiplier.multiplier >= 0,
             "multipliers must be >= 0");
  TV_REQUIRE(p->score_to_q16.shift >= -31 && p->score_to_q16.shift <= 30 &&
                 p->out_multiplier.shift >= -31 && p->out_multiplier.shift <= 30,
             "shift outside [-31, 30]");
  return TV_OK;
}

size_t tv_attention_scratch_size(const tv_attention_params* p) {
  return (size_t)p->tokens * sizeof(int32_t) + (size_t)p->heads * (size_t)p->head_dim;
}

tv_status tv_attention_s8(const tv_attention_params* p, const int8_t* q, const int8_t* k,
                          const int8_t* v, int8_t* output, void* scratch, const char** what) {
  if (tv_attention_validate(p, what) != TV_OK) return TV_ARG_ERROR;
  TV_REQUIRE(q && k && v && output && scratch, "a tensor or the scratch is NULL");
  const int32_t n = p->tokens, dh = p->head_dim, width = p->heads * p->head_dim;
  const size_t bytes = (size_t)n * (size_t)width;
  TV_REQUIRE(!overlaps(output, bytes, k, bytes) && !overlaps(output, bytes, v, bytes),
             "output overlaps k or v");
  TV_REQUIRE(output == q || !overlaps(output, bytes, q, bytes),
             "output overlaps q but does not start at it");
  int32_t* scores = (int32_t*)scratch;
  int8_t* row = (int8_t*)scratch + (size_t)n * sizeof(int32_t);
  for (int32_t i = 0; i < n; ++i) {
    for (int32_t h = 0; h < p->heads; ++h) {
      const int8_t* qi = q + (size_t)i * width + (size_t)h * dh;
      for (int32_t j = 0; j < n; ++j) {
        const int8_t* kj = k + (size_t)j * width + (size_t)h * dh;
        int32_t acc = 0;
        for (int32_t c = 0; c < dh; ++c) {
          acc += ((int32_t)qi[c] + p->q_offset) * ((int32_t)kj[c] + p->k_offset);
        }
        scores[j] = acc;
      }
      tv_softmax_row_q15(scores, n, p->score_to_q16, what);  // params checked above
      for (int32_t c = 0; c < dh; ++c) {
        const int8_t* vc = v + (size_t)h * dh + c;
        int32_t acc = 0;  // sum of Q15 probabilities ~ 2^15, |v| <= 255: < 2^24
        for (int32_t j = 0; j < n; ++j) {
          acc += scores[j] * ((int32_t)vc[(size_t)j * width] + p->v_offset);
        }
        row[h * dh + c] = clamp_s8(tv_requantize(acc, p->out_multiplier) + p->output_offset);
      }
    }
    memcpy(output + (size_t)i * width, row, (size_t)width);
  }
  return TV_OK;
}
