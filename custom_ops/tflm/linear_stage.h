// A linear stage's three tensors (weights [out, in] int8, requantisation [2, out]
// int32, bias [out] int32 or absent) as used by TV_LINEAR, TV_LOW_RANK_LINEAR and
// TV_MLP: checked once in Prepare, turned into a tv_linear_stage in Eval.
#ifndef TFLM_VIT_TFLM_LINEAR_STAGE_H_
#define TFLM_VIT_TFLM_LINEAR_STAGE_H_

#include "op_common.h"

extern "C" {
#include "tv_linear.h"
}

namespace tv_tflm {

// The names a stage's tensors have in error messages: fixed strings, so nothing is
// formatted at run time (and all of them compile out with the messages).
struct StageNames {
  const char* stage;
  const char* weights;
  const char* requantisation;
  const char* bias;
};
#define TV_STAGE_NAMES(s) {s, s " weights", s " requantisation", s " bias"}

// Checks a stage's tensors and validates the stage as Eval will run it (with its
// offsets), so Eval runs it unchecked.
bool CheckStage(const char* op, const StageNames& names, const Context* context,
                const Node* node, int first_input, int32_t in_features, int32_t out_features,
                int32_t input_offset, int32_t output_offset);

tv_linear_stage StageFromTensors(const Context* context, const Node* node, int first_input,
                                 int32_t input_offset, int32_t output_offset);

}  // namespace tv_tflm

#endif  // TFLM_VIT_TFLM_LINEAR_STAGE_H_
