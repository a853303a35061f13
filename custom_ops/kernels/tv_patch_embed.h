// Patch embedding: the Conv2D with kernel = stride = patch (valid padding), read in
// place from the image (each patch row is patch * in_channels contiguous bytes in
// NHWC, so no im2col buffer is needed) and written over it: the tokens may occupy the
// image's own bytes, starting `output_lead` bytes before the image, because every
// token is written only where the image has already been read. Bit-exact with
// TFLite's int8 CONV_2D with per-channel multipliers.
//
// Order (fixed, so the planner can prove the overwrite safe): the tokens of the first
// patch row are computed 0 .. first_band_split - 1, then from the last one down to
// first_band_split; every later patch row left to right. Each token's patch is read
// completely before any of its outputs is written (its outputs are staged in
// scratch), so only tokens computed later constrain where it may be written.
// `tflm_vit.twins.patch_embed.overwrite_layout` computes the split and the smallest
// lead for a shape (the converter writes both into the op's options).
//
// input: int8 [height][width][in_channels] (NHWC, batch 1);
// output: int8 [(height/patch) * (width/patch)][out_channels], tokens row-major.
#ifndef TFLM_VIT_KERNELS_TV_PATCH_EMBED_H_
#define TFLM_VIT_KERNELS_TV_PATCH_EMBED_H_

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TV_PATCH_EMBED_NO_OVERWRITE (-1)

typedef struct {
  int32_t height;
  int32_t width;
  int32_t in_channels;
  int32_t patch;
  int32_t out_channels;
  int32_t first_band_split;    // in [0, width / patch], see the order above
  int32_t output_lead;         // bytes the output may start before the image when the
                               // two share memory, or TV_PATCH_EMBED_NO_OVERWRITE
  int32_t input_offset;        // minus the input zero point
  int32_t output_offset;       // output zero point
  const int8_t* weights;       // [out_channels][patch][patch][in_channels] (OHWI)
  const int32_t* bias;         // [out_channels] or NULL
  const int32_t* multipliers;  // [out_channels]
  const int32_t* shifts;       // [out_channels]
} tv_patch_embed_params;

tv_status tv_patch_embed_validate(const tv_patch_embed_params* p, const char** what);
// One token's outputs (out_channels bytes), staged before they are written.
size_t tv_patch_embed_scratch_size(const tv_patch_embed_params* p);
// The output either does not overlap the image or starts exactly output_lead bytes
// before it; any other overlap is refused (TV_ARG_ERROR), never computed wrongly.
tv_status tv_patch_embed_s8(const tv_patch_embed_params* p, const int8_t* input,
                            int8_t* output, void* scratch, const char** what);
// tv_patch_embed_run_s8: the same without validating the params again, for callers that
// validated them once (a TFLM op in Prepare); only the pointers are checked.
tv_status tv_patch_embed_run_s8(const tv_patch_embed_params* p, const int8_t* input,
                                int8_t* output, void* scratch, const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_PATCH_EMBED_H_
