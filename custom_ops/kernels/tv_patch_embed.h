// Patch embedding, decomposed: the Conv2D with kernel = stride = patch (valid
// padding) computed per patch as a sum of sub_patch x sub_patch sub-kernel
// convolutions into an int32 accumulator per output channel. Scratch is
// out_channels int32 plus one sub_patch^2 * in_channels column, a small fraction of
// a whole-patch im2col buffer (patch^2 * in_channels). Bit-exact with TFLite's int8
// CONV_2D with per-channel multipliers.
//
// input: int8 [height][width][in_channels] (NHWC, batch 1);
// output: int8 [(height/patch) * (width/patch)][out_channels], tokens row-major.
#ifndef TFLM_VIT_KERNELS_TV_PATCH_EMBED_H_
#define TFLM_VIT_KERNELS_TV_PATCH_EMBED_H_

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t height;
  int32_t width;
  int32_t in_channels;
  int32_t patch;
  int32_t out_channels;
  int32_t sub_patch;           // divides patch; patch = one sub-kernel (plain im2col)
  int32_t input_offset;        // minus the input zero point
  int32_t output_offset;       // output zero point
  const int8_t* weights;       // [out_channels][patch][patch][in_channels] (OHWI)
  const int32_t* bias;         // [out_channels] or NULL
  const int32_t* multipliers;  // [out_channels]
  const int32_t* shifts;       // [out_channels]
} tv_patch_embed_params;

tv_status tv_patch_embed_validate(const tv_patch_embed_params* p, const char** what);
size_t tv_patch_embed_scratch_size(const tv_patch_embed_params* p);
tv_status tv_patch_embed_s8(const tv_patch_embed_params* p, const int8_t* input,
                            int8_t* output, void* scratch, const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_PATCH_EMBED_H_
