// TV_LOW_RANK_LINEAR: W ~ U.V per token through an r-sized temporary; the output may
// overwrite the input. Inputs: x, then (weights, requantisation, bias or -1) for U
// (in -> rank) and for V (rank -> out).
#include "linear_stage.h"
#include "op_table.h"

namespace tv_tflm {
namespace {

constexpr char kOp[] = "TV_LOW_RANK_LINEAR";
const StageNames kU = TV_STAGE_NAMES("u");
const StageNames kV = TV_STAGE_NAMES("v");
// Field positions: tv_op_fields.h (generated from tflm_vit/twins/options.py).
enum {
  kTokens = TV_LOW_RANK_LINEAR_TOKENS, kIn = TV_LOW_RANK_LINEAR_IN_FEATURES,
  kRank = TV_LOW_RANK_LINEAR_RANK, kOut = TV_LOW_RANK_LINEAR_OUT_FEATURES,
  kInputOffset = TV_LOW_RANK_LINEAR_INPUT_OFFSET,
  kMidZeroPoint = TV_LOW_RANK_LINEAR_MID_ZERO_POINT,
  kOutputOffset = TV_LOW_RANK_LINEAR_OUTPUT_OFFSET, kFields = TV_LOW_RANK_LINEAR_FIELD_COUNT
};

void* Init(Context* context, const char* buffer, size_t length) {
  return ParseOptions(context, kOp, TV_OP_LOW_RANK_LINEAR, kFields, buffer, length);
}

Status Prepare(Context* context, Node* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  if (data == nullptr) return TV_FAIL(kOp, "custom options invalid (see above)");
  const int32_t* f = data->options.fields;
  if (!CheckCounts(kOp, node, 7, 7, 1) ||
      !CheckActivation(kOp, "input", Input(context, node, 0), f[kTokens], f[kIn]) ||
      !CheckStage(kOp, kU, context, node, 1, f[kIn], f[kRank], f[kInputOffset],
                  f[kMidZeroPoint]) ||
      !CheckStage(kOp, kV, context, node, 4, f[kRank], f[kOut], -f[kMidZeroPoint],
                  f[kOutputOffset]) ||
      !CheckActivation(kOp, "output", Output(context, node, 0), f[kTokens], f[kOut]) ||
      !CheckZeroPoint(kOp, "input", context, node, false, 0, -f[kInputOffset]) ||
      !CheckZeroPoint(kOp, "output", context, node, true, 0, f[kOutputOffset])) {
    return kError;
  }
  return RequestScratchBufferInArena(context, static_cast<size_t>(f[kRank] + f[kOut]),
                                     &data->scratch_index);
}

Status Eval(Context* context, Node* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const int32_t* f = data->options.fields;
  const tv_linear_stage u = StageFromTensors(context, node, 1, f[kInputOffset], f[kMidZeroPoint]);
  const tv_linear_stage v = StageFromTensors(context, node, 4, -f[kMidZeroPoint], f[kOutputOffset]);
  auto* scratch = static_cast<int8_t*>(GetScratchBuffer(context, data->scratch_index));
  const char* what = nullptr;
  if (tv_low_rank_linear_run_s8(&u, &v, f[kTokens], Data<int8_t>(Input(context, node, 0)),
                                MutableData<int8_t>(Output(context, node, 0)), scratch,
                                &what) != TV_OK) {
    return TV_FAIL(kOp, "%s", what);
  }
  return kOk;
}

}  // namespace

const Registration* Register_TV_LOW_RANK_LINEAR() {
  static Registration r = {Init, nullptr, Prepare, Eval, nullptr, kBuiltinCustom, kOp};
  return &r;
}

}  // namespace tv_tflm
