#include "tv_linear.h"

#include "tv_fixed_point.h"
#include "tv_tokenwise.h"

static int8_t clamp_s8(int32_t v) { return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v)); }

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

void tv_linear_row_s8(const tv_linear_stage* s, const int8_t* in, int8_t* out) {
  const int8_t* w = s->weights;
  for (int32_t o = 0; o < s->out_features; ++o, w += s->in_features) {
    int32_t acc = s->bias ? s->bias[o] : 0;
    for (int32_t i = 0; i < s->in_features; ++i) {
      acc += (int32_t)w[i] * ((int32_t)in[i] + s->input_offset);
    }
    const tv_quant_multiplier q = {s->multipliers[o], s->shifts[o]};
    out[o] = clamp_s8(tv_requantize(acc, q) + s->output_offset);
  }
}

size_t tv_linear_scratch_size(const tv_linear_stage* s) { return (size_t)s->out_features; }

static void linear_token(const void* ctx, const int8_t* in, int8_t* out, int8_t* scratch) {
  (void)scratch;
  tv_linear_row_s8((const tv_linear_stage*)ctx, in, out);
}

tv_status tv_linear_s8(const tv_linear_stage* s, int32_t tokens, const int8_t* input,
                       int8_t* output, int8_t* scratch, const char** what) {
  if (tv_linear_validate(s, what) != TV_OK) return TV_ARG_ERROR;
  return tv_for_each_token(linear_token, s, tokens, input, s->in_features, output,
                           s->out_features, scratch, NULL, what);
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

tv_status tv_low_rank_linear_s8(const tv_linear_stage* u, const tv_linear_stage* v,
                                int32_t tokens, const int8_t* input, int8_t* output,
                                int8_t* scratch, const char** what) {
  if (tv_linear_validate(u, what) != TV_OK || tv_linear_validate(v, what) != TV_OK) {
    return TV_ARG_ERROR;
  }
  TV_REQUIRE(u->out_features == v->in_features, "rank of u and v differ");
  TV_REQUIRE(scratch != NULL, "scratch must not be NULL");
  const low_rank_ctx c = {u, v};
  // scratch = [rank temporary | output row buffer]
  return tv_for_each_token(low_rank_token, &c, tokens, input, u->in_features, output,
                           v->out_features, scratch + u->out_features, scratch, what);
}
