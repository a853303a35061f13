#include "tv_op_scratch.h"

#include <string.h>

#include "tv_attention.h"
#include "tv_linear.h"
#include "tv_mlp.h"
#include "tv_patch_embed.h"

// Field positions: tv_op_fields.h (generated from tflm_vit/twins/options.py).
enum { kLinearOut = TV_LINEAR_OUT_FEATURES };
enum { kLowRankRank = TV_LOW_RANK_LINEAR_RANK, kLowRankOut = TV_LOW_RANK_LINEAR_OUT_FEATURES };
enum {
  kAttentionTokens = TV_ATTENTION_TOKENS, kAttentionHeads = TV_ATTENTION_HEADS,
  kAttentionHeadDim = TV_ATTENTION_HEAD_DIM
};
enum {
  kMlpUpCount = TV_MLP_UP_COUNT, kMlpDownCount = TV_MLP_DOWN_COUNT,
  kMlpStages = TV_MLP_FIELD_COUNT, kMlpStageFields = TV_MLP_STAGE_FIELD_COUNT
};
enum { kPatchOutChannels = TV_PATCH_EMBED_OUT_CHANNELS };

static tv_linear_stage stage(int32_t in, int32_t out) {
  tv_linear_stage s;
  memset(&s, 0, sizeof(s));
  s.in_features = in;
  s.out_features = out;
  return s;
}

tv_status tv_op_scratch_size(const tv_options* o, size_t* bytes, const char** what) {
  TV_REQUIRE(o != NULL && bytes != NULL, "options or result is NULL");
  const int32_t* f = o->fields;
  *bytes = 0;
  switch (o->kind) {
    case TV_OP_LAYERNORM:
    case TV_OP_GELU:
      return TV_OK;
    case TV_OP_LINEAR: {
      TV_REQUIRE(o->count > kLinearOut, "TV_LINEAR options too short");
      const tv_linear_stage s = stage(0, f[kLinearOut]);
      *bytes = tv_linear_scratch_size(&s);
      return TV_OK;
    }
    case TV_OP_LOW_RANK_LINEAR: {
      TV_REQUIRE(o->count > kLowRankOut, "TV_LOW_RANK_LINEAR options too short");
      const tv_linear_stage u = stage(0, f[kLowRankRank]), v = stage(f[kLowRankRank], f[kLowRankOut]);
      *bytes = tv_low_rank_linear_scratch_size(&u, &v);
      return TV_OK;
    }
    case TV_OP_ATTENTION: {
      TV_REQUIRE(o->count > kAttentionHeadDim, "TV_ATTENTION options too short");
      tv_attention_params p;
      memset(&p, 0, sizeof(p));
      p.tokens = f[kAttentionTokens];
      p.heads = f[kAttentionHeads];
      p.head_dim = f[kAttentionHeadDim];
      *bytes = tv_attention_scratch_size(&p);
      return TV_OK;
    }
    case TV_OP_MLP: {
      TV_REQUIRE(o->count > kMlpDownCount, "TV_MLP options too short");
      tv_mlp_params p;
      memset(&p, 0, sizeof(p));
      p.up_count = f[kMlpUpCount];
      p.down_count = f[kMlpDownCount];
      TV_REQUIRE(p.up_count >= 1 && p.up_count <= TV_MLP_MAX_STAGES && p.down_count >= 1 &&
                     p.down_count <= TV_MLP_MAX_STAGES,
                 "TV_MLP stage counts must be in [1, TV_MLP_MAX_STAGES]");
      TV_REQUIRE(o->count == kMlpStages + kMlpStageFields * (p.up_count + p.down_count),
                 "TV_MLP options do not hold every stage");
      for (int32_t i = 0; i < p.up_count + p.down_count; ++i) {
        const int32_t* s = f + kMlpStages + kMlpStageFields * i;
        const tv_linear_stage st = stage(s[TV_MLP_STAGE_IN], s[TV_MLP_STAGE_OUT]);
        if (i < p.up_count) {
          p.up[i] = st;
        } else {
          p.down[i - p.up_count] = st;
        }
      }
      *bytes = tv_mlp_scratch_size(&p);
      return TV_OK;
    }
    case TV_OP_PATCH_EMBED: {
      TV_REQUIRE(o->count > kPatchOutChannels, "TV_PATCH_EMBED options too short");
      tv_patch_embed_params p;
      memset(&p, 0, sizeof(p));
      p.out_channels = f[kPatchOutChannels];
      *bytes = tv_patch_embed_scratch_size(&p);
      return TV_OK;
    }
    default:
      TV_REQUIRE(0, "unknown op kind");
  }
  return TV_ARG_ERROR;
}
