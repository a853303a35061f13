// For firmware apps built against a TFLM tree: one call adds every tflm-vit op to
// your resolver. Reserve kTflmVitOpCount slots in its template size.
//
//   static tflite::MicroMutableOpResolver<kMyBuiltins + tflm_vit::kTflmVitOpCount> resolver;
//   ... resolver.AddAdd(); ...
//   if (tflm_vit::AddTflmVitOps(resolver) != kTfLiteOk) { /* resolver too small */ }
//
// Build with TFLM on the include path (make: custom_ops/tflm_vit.inc; CMake:
// tflm_vit_ops; bazel: :tflm_ops).
#ifndef TFLM_VIT_TFLM_TFLM_VIT_OPS_H_
#define TFLM_VIT_TFLM_TFLM_VIT_OPS_H_

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "op_table.h"

namespace tflm_vit {

constexpr unsigned kTflmVitOpCount = tv_tflm::kNumOps;

template <unsigned int N>
TfLiteStatus AddTflmVitOps(tflite::MicroMutableOpResolver<N>& resolver) {
  for (const tv_tflm::NamedRegistration& op : tv_tflm::kAllOps) {
    if (resolver.AddCustom(op.name, op.get()) != kTfLiteOk) return kTfLiteError;
  }
  return kTfLiteOk;
}

}  // namespace tflm_vit

#endif  // TFLM_VIT_TFLM_TFLM_VIT_OPS_H_
