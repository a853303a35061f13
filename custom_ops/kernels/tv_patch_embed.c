#include "tv_patch_embed.h"

#include <string.h>

#include "tv_fixed_point.h"

static int8_t clamp_s8(int32_t v) { return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v)); }

tv_status tv_patch_embed_validate(const tv_patch_embed_params* p, const char** what) {
  TV_REQUIRE(p != NULL, "params are NULL");
  TV_REQUIRE(p->patch > 0, "patch must be > 0");
  TV_REQUIRE(p->height > 0 && p->height % p->patch == 0, "height must be a multiple of patch");
  TV_REQUIRE(p->width > 0 && p->width % p->patch == 0, "width must be a multiple of patch");
  TV_REQUIRE(p->in_channels > 0, "in_channels must be > 0");
  TV_REQUIRE(p->out_channels > 0, "out_channels must be > 0");
  TV_REQUIRE(p->sub_patch > 0 && p->patch % p->sub_patch == 0, "sub_patch must divide patch");
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
  return (size_t)p->out_channels * sizeof(int32_t) +
         (size_t)p->sub_patch * (size_t)p->sub_patch * (size_t)p->in_channels;
}

tv_status tv_patch_embed_s8(const tv_patch_embed_params* p, const int8_t* input,
                            int8_t* output, void* scratch, const char** what) {
  if (tv_patch_embed_validate(p, what) != TV_OK) return TV_ARG_ERROR;
  TV_REQUIRE(input && output && scratch, "input, output or scratch is NULL");
  const int32_t P = p->patch, s = p->sub_patch, C = p->in_channels;
  const int32_t grid_w = p->width / P, tokens = (p->height / P) * grid_w;
  const int32_t run = s * C;  // one sub-kernel row: contiguous in NHWC and in OHWI
  int32_t* acc = (int32_t*)scratch;
  int8_t* col = (int8_t*)scratch + (size_t)p->out_channels * sizeof(int32_t);
  for (int32_t t = 0; t < tokens; ++t) {
    const int32_t y0 = (t / grid_w) * P, x0 = (t % grid_w) * P;
    for (int32_t o = 0; o < p->out_channels; ++o) acc[o] = p->bias ? p->bias[o] : 0;
    for (int32_t by = 0; by < P; by += s) {
      for (int32_t bx = 0; bx < P; bx += s) {
        // Gather the sub-kernel's s x s x C input block.
        for (int32_t sy = 0; sy < s; ++sy) {
          memcpy(col + (size_t)sy * run,
                 input + ((size_t)(y0 + by + sy) * p->width + (size_t)(x0 + bx)) * C,
                 (size_t)run);
        }
        for (int32_t o = 0; o < p->out_channels; ++o) {
          const int8_t* w = p->weights + (size_t)o * P * P * C;
          int32_t sum = 0;
          for (int32_t sy = 0; sy < s; ++sy) {
            const int8_t* wr = w + ((size_t)(by + sy) * P + (size_t)bx) * C;
            const int8_t* cr = col + (size_t)sy * run;
            for (int32_t i = 0; i < run; ++i) sum += (int32_t)wr[i] * ((int32_t)cr[i] + p->input_offset);
          }
          acc[o] += sum;
        }
      }
    }
    int8_t* out = output + (size_t)t * p->out_channels;
    for (int32_t o = 0; o < p->out_channels; ++o) {
      const tv_quant_multiplier q = {p->multipliers[o], p->shifts[o]};
      out[o] = clamp_s8(tv_requantize(acc[o], q) + p->output_offset);
    }
  }
  return TV_OK;
}
