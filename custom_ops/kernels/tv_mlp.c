#include "tv_mlp.h"

#include <string.h>

#include "tv_tokenwise.h"

static int32_t widest(const tv_mlp_params* p) {
  int32_t w = 0;
  for (int32_t s = 0; s < p->up_count; ++s) w = p->up[s].out_features > w ? p->up[s].out_features : w;
  for (int32_t s = 0; s < p->down_count; ++s) {
    w = p->down[s].out_features > w ? p->down[s].out_features : w;
  }
  return w;
}

tv_status tv_mlp_validate(const tv_mlp_params* p, const char** what) {
  TV_REQUIRE(p != NULL, "params are NULL");
  TV_REQUIRE(p->up_count >= 1 && p->up_count <= TV_MLP_MAX_STAGES, "up_count must be 1 or 2");
  TV_REQUIRE(p->down_count >= 1 && p->down_count <= TV_MLP_MAX_STAGES,
             "down_count must be 1 or 2");
  TV_REQUIRE(p->gelu_lut != NULL, "GELU table must not be NULL");
  for (int32_t s = 0; s < p->up_count; ++s) {
    if (tv_linear_validate(&p->up[s], what) != TV_OK) return TV_ARG_ERROR;
  }
  for (int32_t s = 0; s < p->down_count; ++s) {
    if (tv_linear_validate(&p->down[s], what) != TV_OK) return TV_ARG_ERROR;
  }
  TV_REQUIRE(p->up_count == 1 || p->up[0].out_features == p->up[1].in_features,
             "up stages do not chain");
  TV_REQUIRE(p->down_count == 1 || p->down[0].out_features == p->down[1].in_features,
             "down stages do not chain");
  TV_REQUIRE(p->up[p->up_count - 1].out_features == p->down[0].in_features,
             "hidden width of up and down stages differ");
  return TV_OK;
}

size_t tv_mlp_scratch_size(const tv_mlp_params* p) {
  // Ping-pong rows for the stages, plus the output row for token overwriting.
  const size_t out = (size_t)p->down[p->down_count - 1].out_features;
  return 2 * (size_t)widest(p) + out;
}

static void mlp_token(const void* ctx, const int8_t* in, int8_t* out, int8_t* scratch) {
  const tv_mlp_params* p = (const tv_mlp_params*)ctx;
  int8_t* a = scratch;
  int8_t* b = scratch + widest(p);
  const int8_t* x = in;
  for (int32_t s = 0; s < p->up_count; ++s) {
    tv_linear_row_s8(&p->up[s], x, a);
    x = a;
    int8_t* t = a; a = b; b = t;
  }
  // x is the hidden row (in a scratch row): GELU in place.
  int8_t* h = (int8_t*)x;
  const int32_t hidden = p->down[0].in_features;
  for (int32_t c = 0; c < hidden; ++c) h[c] = p->gelu_lut[(int32_t)h[c] + 128];
  for (int32_t s = 0; s < p->down_count; ++s) {
    const int last = s == p->down_count - 1;
    tv_linear_row_s8(&p->down[s], x, last ? out : a);
    x = a;
    int8_t* t = a; a = b; b = t;
  }
}

tv_status tv_mlp_run_s8(const tv_mlp_params* p, int32_t tokens, const int8_t* input,
                        int8_t* output, int8_t* scratch, const char** what) {
  TV_REQUIRE(scratch != NULL, "scratch must not be NULL");
  const int32_t out_width = p->down[p->down_count - 1].out_features;
  return tv_for_each_token(mlp_token, p, tokens, input, p->up[0].in_features, output,
                           out_width, scratch + 2 * (size_t)widest(p), scratch, what);
}

tv_status tv_mlp_s8(const tv_mlp_params* p, int32_t tokens, const int8_t* input,
                    int8_t* output, int8_t* scratch, const char** what) {
  if (tv_mlp_validate(p, what) != TV_OK) return TV_ARG_ERROR;
  return tv_mlp_run_s8(p, tokens, input, output, scratch, what);
}
