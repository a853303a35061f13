// TV_ATTENTION: fused multi-head attention over int8 q, k, v [tokens, heads*head_dim];
// the tokens x tokens score map never exists. The output may start at q.
#include "op_common.h"
#include "op_table.h"

extern "C" {
#include "tv_attention.h"
}

namespace tv_tflm {
namespace {

constexpr char kOp[] = "TV_ATTENTION";
// Field positions: tv_op_fields.h (generated from tflm_vit/twins/options.py).
enum {
  kTokens = TV_ATTENTION_TOKENS, kHeads = TV_ATTENTION_HEADS, kHeadDim = TV_ATTENTION_HEAD_DIM,
  kQOffset = TV_ATTENTION_Q_OFFSET, kKOffset = TV_ATTENTION_K_OFFSET,
  kVOffset = TV_ATTENTION_V_OFFSET, kScoreMult = TV_ATTENTION_SCORE_MULTIPLIER,
  kScoreShift = TV_ATTENTION_SCORE_SHIFT, kOutMult = TV_ATTENTION_OUT_MULTIPLIER,
  kOutShift = TV_ATTENTION_OUT_SHIFT, kOutputOffset = TV_ATTENTION_OUTPUT_OFFSET,
  kFields = TV_ATTENTION_FIELD_COUNT
};

void* Init(Context* context, const char* buffer, size_t length) {
  return ParseOptions(context, kOp, TV_OP_ATTENTION, kFields, buffer, length);
}

tv_attention_params Params(const tv_options& o) {
  const int32_t* f = o.fields;
  return {f[kTokens], f[kHeads], f[kHeadDim], f[kQOffset], f[kKOffset], f[kVOffset],
          {f[kScoreMult], f[kScoreShift]}, {f[kOutMult], f[kOutShift]}, f[kOutputOffset]};
}

Status Prepare(Context* context, Node* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  if (data == nullptr) return TV_FAIL(kOp, "custom options invalid (see above)");
  const tv_attention_params p = Params(data->options);
  const char* what = nullptr;
  if (tv_attention_validate(&p, &what) != TV_OK) return TV_FAIL(kOp, "%s", what);
  const int32_t width = p.heads * p.head_dim;
  if (!CheckCounts(kOp, node, 3, 3, 1) ||
      !CheckActivation(kOp, "q", Input(context, node, 0), p.tokens, width) ||
      !CheckActivation(kOp, "k", Input(context, node, 1), p.tokens, width) ||
      !CheckActivation(kOp, "v", Input(context, node, 2), p.tokens, width) ||
      !CheckActivation(kOp, "output", Output(context, node, 0), p.tokens, width) ||
      !CheckZeroPoint(kOp, "q", context, node, false, 0, -p.q_offset) ||
      !CheckZeroPoint(kOp, "k", context, node, false, 1, -p.k_offset) ||
      !CheckZeroPoint(kOp, "v", context, node, false, 2, -p.v_offset) ||
      !CheckZeroPoint(kOp, "output", context, node, true, 0, p.output_offset)) {
    return kError;
  }
  return RequestScratchBufferInArena(context, tv_attention_scratch_size(&p),
                                     &data->scratch_index);
}

Status Eval(Context* context, Node* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const char* what = nullptr;
  const tv_attention_params p = Params(data->options);
  if (tv_attention_run_s8(&p, Data<int8_t>(Input(context, node, 0)),
                          Data<int8_t>(Input(context, node, 1)),
                          Data<int8_t>(Input(context, node, 2)),
                          MutableData<int8_t>(Output(context, node, 0)),
                          GetScratchBuffer(context, data->scratch_index), &what) != TV_OK) {
    return TV_FAIL(kOp, "%s", what);
  }
  return kOk;
}

}  // namespace

const Registration* Register_TV_ATTENTION() {
  static Registration r = {Init, nullptr, Prepare, Eval, nullptr, kBuiltinCustom, kOp};
  return &r;
}

}  // namespace tv_tflm
