#include "linear_stage.h"

namespace tv_tflm {

bool CheckStage(const char* op, const StageNames& names, const Context* context,
                const Node* node, int first_input, int32_t in_features, int32_t out_features,
                int32_t input_offset, int32_t output_offset) {
  const EvalTensor* w = Input(context, node, first_input);
  const EvalTensor* q = Input(context, node, first_input + 1);
  const EvalTensor* b = Input(context, node, first_input + 2);
  const int32_t w_dims[2] = {out_features, in_features};
  const int32_t q_dims[2] = {2, out_features};
  if (!CheckTensor(op, names.weights, w, kTypeInt8) ||
      !CheckShape(op, names.weights, w, 2, w_dims) ||
      !CheckTensor(op, names.requantisation, q, kTypeInt32) ||
      !CheckShape(op, names.requantisation, q, 2, q_dims) ||
      (b != nullptr && (!CheckTensor(op, names.bias, b, kTypeInt32) ||
                        !CheckShape(op, names.bias, b, 1, &out_features)))) {
    return false;
  }
  tv_linear_stage s = StageFromTensors(context, node, first_input, input_offset, output_offset);
  const char* what = nullptr;
  if (tv_linear_validate(&s, &what) != TV_OK) {
    TV_ERROR(op, "%s: %s", names.stage, what);
    return false;
  }
  return true;
}

tv_linear_stage StageFromTensors(const Context* context, const Node* node, int first_input,
                                 int32_t input_offset, int32_t output_offset) {
  const EvalTensor* w = Input(context, node, first_input);
  const int32_t* q = Data<int32_t>(Input(context, node, first_input + 1));
  tv_linear_stage s;
  s.out_features = Dim(w, 0);
  s.in_features = Dim(w, 1);
  s.weights = Data<int8_t>(w);
  s.bias = Data<int32_t>(Input(context, node, first_input + 2));
  s.multipliers = q;
  s.shifts = q + s.out_features;
  s.input_offset = input_offset;
  s.output_offset = output_offset;
  s.right_shifts_only = 0;  // the ops that use it set it from what Prepare found
  return s;
}

}  // namespace tv_tflm
