// TV_LINEAR: a fully connected layer over tokens whose output may overwrite its
// input (token overwriting; the planner decides, the kernel handles both).
// Inputs: x, weights [out, in], requantisation [2, out], bias [out] (optional).
#include "linear_stage.h"
#include "op_table.h"

namespace tv_tflm {
namespace {

constexpr char kOp[] = "TV_LINEAR";
const StageNames kStage = TV_STAGE_NAMES("linear");
// Field positions: tv_op_fields.h (generated from tflm_vit/twins/options.py).
enum {
  kTokens = TV_LINEAR_TOKENS, kIn = TV_LINEAR_IN_FEATURES, kOut = TV_LINEAR_OUT_FEATURES,
  kInputOffset = TV_LINEAR_INPUT_OFFSET, kOutputOffset = TV_LINEAR_OUTPUT_OFFSET,
  kFields = TV_LINEAR_FIELD_COUNT,
  // Prepare's finding, kept in the first option slot after the parsed fields: OpData's
  // size is the memory model's (TV_OP_DATA_BYTES), so a new member would cost every op
  // four bytes of arena.
  kRightShiftsOnly = kFields
};
static_assert(kRightShiftsOnly < TV_OPTIONS_MAX_FIELDS, "no spare option slot");

void* Init(Context* context, const char* buffer, size_t length) {
  return ParseOptions(context, kOp, TV_OP_LINEAR, kFields, buffer, length);
}

Status Prepare(Context* context, Node* node) {
  auto* data = static_cast<OpData*>(node->user_data);
  if (data == nullptr) return TV_FAIL(kOp, "custom options invalid (see above)");
  const int32_t* f = data->options.fields;
  if (!CheckCounts(kOp, node, 3, 4, 1) ||
      !CheckActivation(kOp, "input", Input(context, node, 0), f[kTokens], f[kIn]) ||
      !CheckStage(kOp, kStage, context, node, 1, f[kIn], f[kOut], f[kInputOffset],
                  f[kOutputOffset]) ||
      !CheckActivation(kOp, "output", Output(context, node, 0), f[kTokens], f[kOut]) ||
      !CheckZeroPoint(kOp, "input", context, node, false, 0, -f[kInputOffset]) ||
      !CheckZeroPoint(kOp, "output", context, node, true, 0, f[kOutputOffset])) {
    return kError;
  }
  const tv_linear_stage s = StageFromTensors(context, node, 1, f[kInputOffset], f[kOutputOffset]);
  data->options.fields[kRightShiftsOnly] = tv_linear_right_shifts_only(&s);
  return RequestScratchBufferInArena(context, static_cast<size_t>(f[kOut]),
                                     &data->scratch_index);
}

Status Eval(Context* context, Node* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  const int32_t* f = data->options.fields;
  tv_linear_stage s = StageFromTensors(context, node, 1, f[kInputOffset], f[kOutputOffset]);
  s.right_shifts_only = f[kRightShiftsOnly];
  const char* what = nullptr;
  if (tv_linear_run_s8(&s, f[kTokens], Data<int8_t>(Input(context, node, 0)),
                       MutableData<int8_t>(Output(context, node, 0)),
                       static_cast<int8_t*>(GetScratchBuffer(context, data->scratch_index)),
                       &what) != TV_OK) {
    return TV_FAIL(kOp, "%s", what);
  }
  return kOk;
}

}  // namespace

const Registration* Register_TV_LINEAR() {
  static Registration r = {Init, nullptr, Prepare, Eval, nullptr, kBuiltinCustom, kOp};
  return &r;
}

}  // namespace tv_tflm
