// Generated from tflm_vit/twins/options.py (`python -m tflm_vit.twins.options
// --write`); do not edit: tests/test_options_header.py checks it is current.
// Each op's custom-options keys (a FlexBuffers map), in the field order of
// tv_op_fields.h. Included by options_reader.cc only.
#ifndef TFLM_VIT_TFLM_OPTION_NAMES_H_
#define TFLM_VIT_TFLM_OPTION_NAMES_H_

#include <stdint.h>

namespace tv_tflm {

constexpr int64_t kOptionsVersion = 2;

static const char* const kLayernormKeys[] = {
    "tokens",
    "channels",
    "output_zero_point",
    "eps_lo",
    "eps_hi",
    "sqrt_iterations",
};
static const char* const kGeluKeys[] = {
    "mode",
    "input_zero_point",
    "output_zero_point",
    "q16_multiplier",
    "q16_shift",
    "out_multiplier",
    "out_shift",
};
static const char* const kLinearKeys[] = {
    "tokens",
    "in_features",
    "out_features",
    "input_offset",
    "output_offset",
};
static const char* const kLowRankLinearKeys[] = {
    "tokens",
    "in_features",
    "rank",
    "out_features",
    "input_offset",
    "mid_zero_point",
    "output_offset",
};
static const char* const kAttentionKeys[] = {
    "tokens",
    "heads",
    "head_dim",
    "q_offset",
    "k_offset",
    "v_offset",
    "score_multiplier",
    "score_shift",
    "out_multiplier",
    "out_shift",
    "output_offset",
};
static const char* const kMlpKeys[] = {
    "tokens",
    "up_count",
    "down_count",
    "stage0_in",
    "stage0_out",
    "stage0_input_offset",
    "stage0_output_offset",
    "stage1_in",
    "stage1_out",
    "stage1_input_offset",
    "stage1_output_offset",
    "stage2_in",
    "stage2_out",
    "stage2_input_offset",
    "stage2_output_offset",
    "stage3_in",
    "stage3_out",
    "stage3_input_offset",
    "stage3_output_offset",
};
static const char* const kPatchEmbedKeys[] = {
    "height",
    "width",
    "in_channels",
    "patch",
    "out_channels",
    "first_band_split",
    "output_lead",
    "input_offset",
    "output_offset",
};

struct OptionKeys {
  int32_t kind;
  const char* op;
  const char* const* keys;
  int count;
};

static const OptionKeys kOptionKeys[] = {
    {1, "TV_LAYERNORM", kLayernormKeys, 6},
    {2, "TV_GELU", kGeluKeys, 7},
    {3, "TV_LINEAR", kLinearKeys, 5},
    {4, "TV_LOW_RANK_LINEAR", kLowRankLinearKeys, 7},
    {5, "TV_ATTENTION", kAttentionKeys, 11},
    {6, "TV_MLP", kMlpKeys, 19},
    {7, "TV_PATCH_EMBED", kPatchEmbedKeys, 9},
};

}  // namespace tv_tflm

#endif  // TFLM_VIT_TFLM_OPTION_NAMES_H_
