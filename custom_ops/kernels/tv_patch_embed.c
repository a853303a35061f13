#include "tv_patch_embed.h"

#include <string.h>

#include "tv_dot.h"
#include "tv_fixed_point.h"

tv_status tv_patch_embed_validate(const tv_patch_embed_params* p, const char** what) {
  TV_REQUIRE(p != NULL, "params are NULL");
  TV_REQUIRE(p->patch > 0, "patch must be > 0");
  TV_REQUIRE(p->height > 0 && p->height % p->patch == 0, "height must be a multiple of patch");
  TV_REQUIRE(p->width > 0 && p->width % p->patch == 0, "width must be a multiple of patch");
  TV_REQUIRE(p->in_channels > 0, "in_channels must be > 0");
  TV_REQUIRE(p->out_channels > 0, "out_channels must be > 0");
  TV_REQUIRE(p->first_band_split >= 0 && p->first_band_split <= p->width / p->patch,
             "first_band_split must be in [0, width / patch]");
  TV_REQUIRE(p->output_lead >= TV_PATCH_EMBED_NO_OVERWRITE,
             "output_lead must be >= 0 (or -1: no overwrite)");
  TV_REQUIRE(p->output_lead == TV_PATCH_EMBED_NO_OVERWRITE ||
                 p->out_channels < p->patch * p->patch * p->in_channels,
             "output_lead given but out_channels >= patch^2 * in_channels: the tokens are "
             "larger than the image bytes they come from, so they cannot overwrite it");
  TV_REQUIRE(p->input_offset >= -127 && p->input_offset <= 128,
             "input_offset must be in [-127, 128]");
  TV_REQUIRE(p->output_offset >= -128 && p->output_offset <= 127,
             "output_offset must be in [-128, 127]");
  TV_REQUIRE(p->weights && p->multipliers && p->shifts, "weights or requantisation is NULL");
  for (int32_t o = 0; o < p->out_channels; ++o) {
    TV_REQUIRE(p->shifts[o] >= -31 && p->shifts[o] <= 30, "shift outside [-31, 30]");
    TV_REQUIRE(p->multipliers[o] >= 0, "multiplier must be >= 0");
  }
  return TV_OK;
}

size_t tv_patch_embed_scratch_size(const tv_patch_embed_params* p) {
  return (size_t)p->out_channels;
}

// The token computed at step `step` of the order described in the header.
static int32_t token_at(const tv_patch_embed_params* p, int32_t grid_w, int32_t step) {
  if (step >= grid_w) return step;
  return step < p->first_band_split ? step : grid_w - 1 - (step - p->first_band_split);
}

tv_status tv_patch_embed_run_s8(const tv_patch_embed_params* p, const int8_t* input,
                                int8_t* output, void* scratch, const char** what) {
  TV_REQUIRE(input && output && scratch, "input, output or scratch is NULL");
  const int32_t P = p->patch, C = p->in_channels, D = p->out_channels;
  const int32_t grid_w = p->width / P, tokens = (p->height / P) * grid_w;
  const size_t in_bytes = (size_t)p->height * p->width * C, out_bytes = (size_t)tokens * D;
  const uintptr_t in = (uintptr_t)input, out = (uintptr_t)output;
  if (out < in + in_bytes && in < out + out_bytes) {
    TV_REQUIRE(p->output_lead != TV_PATCH_EMBED_NO_OVERWRITE &&
                   out + (uintptr_t)p->output_lead == in,
               "output overlaps the image other than output_lead bytes before it");
  }
  const int32_t run = P * C;  // one patch row: contiguous in NHWC and in OHWI
  const size_t row_stride = (size_t)p->width * C;
  int8_t* staged = (int8_t*)scratch;
  for (int32_t step = 0; step < tokens; ++step) {
    const int32_t t = token_at(p, grid_w, step);
    const int8_t* patch = input + (size_t)(t / grid_w) * P * row_stride + (size_t)(t % grid_w) * run;
    const int32_t patch_weights = P * run;  // one output channel's weights (OHWI)
    int32_t o = 0;
    for (; o + 4 <= D; o += 4) {  // four channels share each load of the patch
      int32_t acc[4] = {0, 0, 0, 0};
      if (p->bias) {
        for (int32_t r = 0; r < 4; ++r) acc[r] = p->bias[o + r];
      }
      const int8_t* w = p->weights + (size_t)o * patch_weights;
      for (int32_t y = 0; y < P; ++y) {
        tv_dot4_s8(patch + (size_t)y * row_stride, p->input_offset, w + (size_t)y * run,
                   patch_weights, 0, run, acc);
      }
      for (int32_t r = 0; r < 4; ++r) {
        staged[o + r] = tv_requantize_s8(acc[r], p->multipliers[o + r], p->shifts[o + r],
                                         p->output_offset);
      }
    }
    for (; o < D; ++o) {
      const int8_t* w = p->weights + (size_t)o * patch_weights;
      int32_t acc = p->bias ? p->bias[o] : 0;
      for (int32_t y = 0; y < P; ++y) {
        acc += tv_dot1_s8(patch + (size_t)y * row_stride, p->input_offset, w + (size_t)y * run,
                          0, run);
      }
      staged[o] = tv_requantize_s8(acc, p->multipliers[o], p->shifts[o], p->output_offset);
    }
    // The whole patch has been read: the token may now land on its own bytes.
    memcpy(output + (size_t)t * D, staged, (size_t)D);
  }
  return TV_OK;
}

tv_status tv_patch_embed_s8(const tv_patch_embed_params* p, const int8_t* input,
                            int8_t* output, void* scratch, const char** what) {
  if (tv_patch_embed_validate(p, what) != TV_OK) return TV_ARG_ERROR;
  return tv_patch_embed_run_s8(p, input, output, scratch, what);
}
