#include "tv_attention.h"

#include <string.h>

#include "tv_dot.h"
#include "tv_fixed_point.h"
#include "tv_softmax.h"


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

// One column of softmax(q k^T) v: sum_j probs[j] * (v[j][c] + v_offset), requantised.
// The sum of the Q15 probabilities is ~2^15 and |v + offset| <= 255: it stays < 2^24.
static int8_t weighted_column(const tv_attention_params* p, const int32_t* probs,
                              const int8_t* vc, int32_t width) {
  int32_t acc = 0;
  for (int32_t j = 0; j < p->tokens; ++j) {
    acc += probs[j] * ((int32_t)vc[(size_t)j * width] + p->v_offset);
  }
  return tv_requantize_s8(acc, p->out_multiplier.multiplier, p->out_multiplier.shift,
                          p->output_offset);
}

// Every column of one head's output row. `probs` is the scratch row of n Q15
// probabilities; the DSP path may repack it (it is not read afterwards).
static void weighted_sum(const tv_attention_params* p, int32_t* probs, const int8_t* vh,
                         int32_t width, int8_t* out) {
  const int32_t dh = p->head_dim;
  int32_t c = 0;
#if defined(TV_DOT_DSP)
  const int32_t n = p->tokens;
  // Two tokens per SMLAD: probabilities as 16-bit pairs, the values of two tokens in one
  // column paired by PKHBT/PKHTB. A probability of exactly 2^15 (one token takes all)
  // does not fit 16 bits: such rows take the portable loop.
  int fits = 1;
  for (int32_t j = 0; j < n; ++j) fits &= probs[j] < 32768;
  if (fits) {
    const int32_t blocked = dh & ~3;
    for (int32_t cc = blocked; cc < dh; ++cc) out[cc] = weighted_column(p, probs, vh + cc, width);
    const int32_t last = probs[n - 1];
    uint32_t* pairs = (uint32_t*)probs;  // pairs[m] = p[2m] | p[2m+1] << 16; m <= 2m
    for (int32_t m = 0; m < n / 2; ++m) {
      pairs[m] = ((uint32_t)probs[2 * m] & 0xFFFFu) | ((uint32_t)probs[2 * m + 1] << 16);
    }
    const uint32_t vo = ((uint32_t)p->v_offset << 16) | ((uint32_t)p->v_offset & 0xFFFFu);
    for (; c < blocked; c += 4) {
      int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
      const int8_t* vj = vh + c;
      for (int32_t m = 0; m < n / 2; ++m, vj += 2 * (size_t)width) {
        const uint32_t pp = pairs[m];
        const int32_t r0 = arm_nn_read_s8x4(vj);          // token 2m, columns c..c+3
        const int32_t r1 = arm_nn_read_s8x4(vj + width);  // token 2m+1
        const int32_t r0_02 = SXTAB16(vo, r0), r0_13 = SXTAB16_RORn(vo, (uint32_t)r0, 8);
        const int32_t r1_02 = SXTAB16(vo, r1), r1_13 = SXTAB16_RORn(vo, (uint32_t)r1, 8);
        a0 = SMLAD(PKHBT(r0_02, r1_02, 16), pp, a0);  // column c: low halves
        a2 = SMLAD(PKHTB(r1_02, r0_02, 16), pp, a2);  // column c+2: high halves
        a1 = SMLAD(PKHBT(r0_13, r1_13, 16), pp, a1);
        a3 = SMLAD(PKHTB(r1_13, r0_13, 16), pp, a3);
      }
      if (n & 1) {
        const int8_t* vl = vh + (size_t)(n - 1) * width + c;
        a0 += last * ((int32_t)vl[0] + p->v_offset);
        a1 += last * ((int32_t)vl[1] + p->v_offset);
        a2 += last * ((int32_t)vl[2] + p->v_offset);
        a3 += last * ((int32_t)vl[3] + p->v_offset);
      }
      const int32_t m = p->out_multiplier.multiplier, sh = p->out_multiplier.shift;
      out[c] = tv_requantize_s8(a0, m, sh, p->output_offset);
      out[c + 1] = tv_requantize_s8(a1, m, sh, p->output_offset);
      out[c + 2] = tv_requantize_s8(a2, m, sh, p->output_offset);
      out[c + 3] = tv_requantize_s8(a3, m, sh, p->output_offset);
    }
    return;
  }
#endif
  for (; c < dh; ++c) out[c] = weighted_column(p, probs, vh + c, width);
}

tv_status tv_attention_run_s8(const tv_attention_params* p, const int8_t* q, const int8_t* k,
                              const int8_t* v, int8_t* output, void* scratch, const char** what) {
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
      const int8_t* kh = k + (size_t)h * dh;
      int32_t j = 0;
      for (; j + 4 <= n; j += 4) {  // four keys share each load of q
        scores[j] = scores[j + 1] = scores[j + 2] = scores[j + 3] = 0;
        tv_dot4_s8(qi, p->q_offset, kh + (size_t)j * width, width, p->k_offset, dh, scores + j);
      }
      for (; j < n; ++j) {
        scores[j] = tv_dot1_s8(qi, p->q_offset, kh + (size_t)j * width, p->k_offset, dh);
      }
      tv_softmax_row_q15(scores, n, p->score_to_q16, what);  // params checked above
      weighted_sum(p, scores, v + (size_t)h * dh, width, row + (size_t)h * dh);
    }
    memcpy(output + (size_t)i * width, row, (size_t)width);
  }
  return TV_OK;
}

tv_status tv_attention_s8(const tv_attention_params* p, const int8_t* q, const int8_t* k,
                          const int8_t* v, int8_t* output, void* scratch, const char** what) {
  if (tv_attention_validate(p, what) != TV_OK) return TV_ARG_ERROR;
  return tv_attention_run_s8(p, q, k, v, output, scratch, what);
}
