// TV_GELU: GELU on int8, by a 256-entry table (mode 0; input 1 is the table) or by
// the integer x * sigmoid(1.702 x) approximation (mode 1; no table). May run in place.
#include "op_common.h"
#include "op_table.h"

extern "C" {
#include "tv_gelu.h"
}

namespace tv_tflm {
namespace {

constexpr char kOp[] = "TV_GELU";
// Field positions: tv_op_fields.h (generated from tflm_vit/twins/options.py).
enum {
  kMode = TV_GELU_MODE, kInputZeroPoint = TV_GELU_INPUT_ZERO_POINT,
  kOutputZeroPoint = TV_GELU_OUTPUT_ZERO_POINT, kQ16Mult = TV_GELU_Q16_MULTIPLIER,
  kQ16Shift = TV_GELU_Q16_SHIFT, kOutMult = TV_GELU_OUT_MULTIPLIER,
  kOutShift = TV_GELU_OUT_SHIFT, kFields = TV_GELU_FIELD_COUNT
};
enum { kModeTable = TV_GELU_MODE_TABLE, kModeShift = TV_GELU_MODE_SHIFT };

void* Init(Context* context, const char* buffer, size_t length) {
  return ParseOptions(context, kOp, TV_OP_GELU, kFields, buffer, length);
}

Status Prepare(Context* context, Node* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  if (data == nullptr) return TV_FAIL(kOp, "custom options invalid (see above)");
  const tv_options* o = &data->options;
  const int32_t mode = o->fields[kMode];
  if (mode != kModeTable && mode != kModeShift) return TV_FAIL(kOp, "mode %d is not 0 or 1", static_cast<int>(mode));
  const int inputs = mode == kModeTable ? 2 : 1;
  if (!CheckCounts(kOp, node, inputs, inputs, 1)) return kError;
  const EvalTensor* x = Input(context, node, 0);
  const EvalTensor* y = Output(context, node, 0);
  if (!CheckTensor(kOp, "input", x, kTypeInt8) || !CheckTensor(kOp, "output", y, kTypeInt8)) {
    return kError;
  }
  // The table encodes both quantizations; the integer approximation takes the zero points.
  if (mode == kModeShift &&
      (!CheckZeroPoint(kOp, "input", context, node, false, 0, o->fields[kInputZeroPoint]) ||
       !CheckZeroPoint(kOp, "output", context, node, true, 0, o->fields[kOutputZeroPoint]))) {
    return kError;
  }
  if (ElementCount(x) != ElementCount(y)) {
    return TV_FAIL(kOp, "input has %d elements, output %d", static_cast<int>(ElementCount(x)),
                   static_cast<int>(ElementCount(y)));
  }
  if (mode == kModeTable) {
    const int32_t dims[1] = {256};
    const EvalTensor* table = Input(context, node, 1);
    if (!CheckTensor(kOp, "table", table, kTypeInt8) ||
        !CheckShape(kOp, "table", table, 1, dims)) {
      return kError;
    }
  }
  return kOk;
}

Status Eval(Context* context, Node* node) {
  const int32_t* f = static_cast<const OpData*>(node->user_data)->options.fields;
  const EvalTensor* x = Input(context, node, 0);
  const int32_t count = static_cast<int32_t>(ElementCount(x));
  int8_t* out = MutableData<int8_t>(Output(context, node, 0));
  const char* what = nullptr;
  tv_status status;
  if (f[kMode] == kModeTable) {
    status = tv_lut_s8(Data<int8_t>(Input(context, node, 1)), Data<int8_t>(x), out, count, &what);
  } else {
    const tv_gelu_shift_params p = {f[kInputZeroPoint], f[kOutputZeroPoint],
                                    {f[kQ16Mult], f[kQ16Shift]}, {f[kOutMult], f[kOutShift]}};
    status = tv_gelu_shift_s8(&p, Data<int8_t>(x), out, count, &what);
  }
  return status == TV_OK ? kOk : TV_FAIL(kOp, "%s", what);
}

}  // namespace

const Registration* Register_TV_GELU() {
  static Registration r = {Init, nullptr, Prepare, Eval, nullptr, kBuiltinCustom, kOp};
  return &r;
}

}  // namespace tv_tflm
