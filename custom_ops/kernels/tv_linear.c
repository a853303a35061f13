#include "tv_linear.h"

#include "tv_dot.h"
#include "tv_fixed_point.h"
#include "tv_tokenwise.h"

tv_status tv_linear_validate(const tv_linear_stage* s, const char** what) {
  TV_REQUIRE(s != NULL, "linear stage is NULL");
  TV_REQUIRE(s->in_features > 0, "in_features must be > 0");
  TV_REQUIRE(s->out_features > 0, "out_features must be > 0");
  TV_REQUIRE(s->weights != NULL, "weights must not be NULL");
  TV_REQUIRE(s->multipliers != NULL && s->shifts != NULL, "requantisation table is NULL");
  TV_REQUIRE(s->input_offset >= -127 && s->input_offset <= 128,
             "input_offset must be in [-127, 128]");
  TV_REQUIRE(s->output_offset >= -128 && s->output_offset <= 127,
             "output_offset must be in [-128, 127]");
  for (int32_t o = 0; o < s->out_features; ++o) {
    TV_REQUIRE(s->shifts[o] >= -31 && s->shifts[o] <= 30, "shift outside [-31, 30]");
    TV_REQUIRE(s->multipliers[o] >= 0, "multiplier must be >= 0");
  }
  return TV_OK;
}

int32_t tv_linear_right_shifts_only(const tv_linear_stage* s) {
  for (int32_t o = 0; o < s->out_features; ++o) {
    if (s->shifts[o] > 0) return 0;
  }
  return 1;
}

void tv_linear_row_s8(const tv_linear_stage* s, const int8_t* in, int8_t* out) {
  // Locals: the int8 stores below may alias anything, so fields read through `s` would
  // be reloaded after every output.
  const int32_t n_in = s->in_features, n_out = s->out_features;
  const int32_t in_offset = s->input_offset, out_offset = s->output_offset;
  const int32_t* bias = s->bias;
  const int32_t* mult = s->multipliers;
  const int32_t* shift = s->shifts;
  const int8_t* w = s->weights;
  int32_t o = 0;
  for (; o + 4 <= n_out; o += 4, w += 4 * n_in) {  // four outputs share each input load
    int32_t acc[4] = {0, 0, 0, 0};
    if (bias) {
      for (int32_t r = 0; r < 4; ++r) acc[r] = bias[o + r];
    }
    tv_dot4_s8(in, in_offset, w, n_in, 0, n_in, acc);
    for (int32_t r = 0; r < 4; ++r) {
      out[o + r] = tv_requantize_s8(acc[r], mult[o + r], shift[o + r], out_offset);
    }
  }
  for (; o < n_out; ++o, w += n_in) {
    const int32_t acc = (bias ? bias[o] : 0) + tv_dot1_s8(in, in_offset, w, 0, n_in);
    out[o] = tv_requantize_s8(acc, mult[o], shift[o], out_offset);
  }
}

size_t tv_linear_scratch_size(const tv_linear_stage* s) { return (size_t)s->out_features; }

static void linear_token(const void* ctx, const int8_t* in, int8_t* out, int8_t* scratch) {
  (void)scratch;
  tv_linear_row_s8((const tv_linear_stage*)ctx, in, out);
}

tv_status tv_linear_run_s8(const tv_linear_stage* s, int32_t tokens, const int8_t* input,
                           int8_t* output, int8_t* scratch, const char** what) {
#if defined(TV_DOT_DSP)
  // An output apart from its input (no token overwriting) is one matrix product:
  // CMSIS-NN's int8 matrix-matrix kernel takes two tokens by two outputs per pass, so
  // each weight load serves two tokens, and adds the input offset as a per-row weight
  // sum. (Its vector-matrix kernel, one token at a time, counted slower than
  // tv_linear_row_s8 on the M7, so token-overwriting runs stay on ours.)
  if (tokens > 1 && s->right_shifts_only && input != NULL && output != NULL &&
      !tv_token_rows_overlap(input, s->in_features, output, s->out_features, tokens)) {
    arm_nn_mat_mult_nt_t_s8(input, s->weights, s->bias, output, s->multipliers, s->shifts,
                            tokens, s->out_features, s->in_features, s->input_offset,
                            s->output_offset, -128, 127, s->out_features, s->in_features);
    return TV_OK;
  }
#endif
  return tv_for_each_token(linear_token, s, tokens, input, s->in_features, output,
                           s->out_features, scratch, NULL, what);
}

tv_status tv_linear_s8(const tv_linear_stage* s, int32_t tokens, const int8_t* input,
                       int8_t* output, int8_t* scratch, const char** what) {
  if (tv_linear_validate(s, what) != TV_OK) return TV_ARG_ERROR;
  tv_linear_stage v = *s;
  v.right_shifts_only = tv_linear_right_shifts_only(s);
  return tv_linear_run_s8(&v, tokens, input, output, scratch, what);
}

typedef struct {
  const tv_linear_stage* u;
  const tv_linear_stage* v;
} low_rank_ctx;

static void low_rank_token(const void* ctx, const int8_t* in, int8_t* out, int8_t* scratch) {
  const low_rank_ctx* c = (const low_rank_ctx*)ctx;
  tv_linear_row_s8(c->u, in, scratch);  // the r-sized temporary
  tv_linear_row_s8(c->v, scratch, out);
}

size_t tv_low_rank_linear_scratch_size(const tv_linear_stage* u, const tv_linear_stage* v) {
  return (size_t)u->out_features + (size_t)v->out_features;
}

tv_status tv_low_rank_linear_run_s8(const tv_linear_stage* u, const tv_linear_stage* v,
                                    int32_t tokens, const int8_t* input, int8_t* output,
                                    int8_t* scratch, const char** what) {
  TV_REQUIRE(u->out_features == v->in_features, "rank of u and v differ");
  TV_REQUIRE(scratch != NULL, "scratch must not be NULL");
  const low_rank_ctx c = {u, v};
  // scratch = [rank temporary | output row buffer]
  return tv_for_each_token(low_rank_token, &c, tokens, input, u->in_features, output,
                           v->out_features, scratch + u->out_features, scratch, what);
}

tv_status tv_low_rank_linear_s8(const tv_linear_stage* u, const tv_linear_stage* v,
                                int32_t tokens, const int8_t* input, int8_t* output,
                                int8_t* scratch, const char** what) {
  if (tv_linear_validate(u, what) != TV_OK || tv_linear_validate(v, what) != TV_OK) {
    return TV_ARG_ERROR;
  }
  return tv_low_rank_linear_run_s8(u, v, tokens, input, output, scratch, what);
}
