// TV_LAYERNORM: integer LayerNorm per token. May run in place.
// Inputs: x, requantisation [2, channels] (gamma folded in), bias [channels] (beta).
#include "op_common.h"
#include "op_table.h"

extern "C" {
#include "tv_layernorm.h"
}

namespace tv_tflm {
namespace {

constexpr char kOp[] = "TV_LAYERNORM";
// Field positions: tv_op_fields.h (generated from tflm_vit/twins/options.py).
enum {
  kTokens = TV_LAYERNORM_TOKENS, kChannels = TV_LAYERNORM_CHANNELS,
  kOutputZeroPoint = TV_LAYERNORM_OUTPUT_ZERO_POINT, kEpsLo = TV_LAYERNORM_EPS_LO,
  kEpsHi = TV_LAYERNORM_EPS_HI, kSqrtIterations = TV_LAYERNORM_SQRT_ITERATIONS,
  kFields = TV_LAYERNORM_FIELD_COUNT
};

void* Init(Context* context, const char* buffer, size_t length) {
  return ParseOptions(context, kOp, TV_OP_LAYERNORM, kFields, buffer, length);
}

tv_layernorm_params Params(const Context* context, const Node* node, const tv_options* o) {
  const int32_t* f = o->fields;
  const int32_t* q = Data<int32_t>(Input(context, node, 1));
  tv_layernorm_params p;
  p.tokens = f[kTokens];
  p.channels = f[kChannels];
  p.output_zero_point = f[kOutputZeroPoint];
  p.eps_term = static_cast<int64_t>((static_cast<uint64_t>(static_cast<uint32_t>(f[kEpsHi])) << 32) |
                                    static_cast<uint32_t>(f[kEpsLo]));
  p.sqrt_iterations = f[kSqrtIterations];
  p.multipliers = q;
  p.shifts = q ? q + p.channels : nullptr;
  p.bias = Data<int32_t>(Input(context, node, 2));
  return p;
}

Status Prepare(Context* context, Node* node) {
  const auto* data = static_cast<const OpData*>(node->user_data);
  if (data == nullptr) return TV_FAIL(kOp, "custom options invalid (see above)");
  const tv_options* o = &data->options;
  const int32_t* f = o->fields;
  const int32_t table_dims[2] = {2, f[kChannels]};
  if (!CheckCounts(kOp, node, 3, 3, 1) ||
      !CheckActivation(kOp, "input", Input(context, node, 0), f[kTokens], f[kChannels]) ||
      !CheckTensor(kOp, "requantisation", Input(context, node, 1), kTypeInt32) ||
      !CheckShape(kOp, "requantisation", Input(context, node, 1), 2, table_dims) ||
      !CheckTensor(kOp, "bias", Input(context, node, 2), kTypeInt32) ||
      !CheckShape(kOp, "bias", Input(context, node, 2), 1, &f[kChannels]) ||
      !CheckActivation(kOp, "output", Output(context, node, 0), f[kTokens], f[kChannels]) ||
      // The input's zero point cancels (D*x - sum x); only the output's enters.
      !CheckZeroPoint(kOp, "output", context, node, true, 0, f[kOutputZeroPoint])) {
    return kError;
  }
  const tv_layernorm_params p = Params(context, node, o);
  const char* what = nullptr;
  if (tv_layernorm_validate(&p, &what) != TV_OK) return TV_FAIL(kOp, "%s", what);
  return kOk;
}

Status Eval(Context* context, Node* node) {
  const auto* o = &static_cast<const OpData*>(node->user_data)->options;
  const tv_layernorm_params p = Params(context, node, o);
  const char* what = nullptr;
  if (tv_layernorm_run_s8(&p, Data<int8_t>(Input(context, node, 0)),
                          MutableData<int8_t>(Output(context, node, 0)), &what) != TV_OK) {
    return TV_FAIL(kOp, "%s", what);
  }
  return kOk;
}

}  // namespace

const Registration* Register_TV_LAYERNORM() {
  static Registration r = {Init, nullptr, Prepare, Eval, nullptr, kBuiltinCustom, kOp};
  return &r;
}

}  // namespace tv_tflm
