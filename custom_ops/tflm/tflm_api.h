// What our TFLM adapters see of TFLM: types (Context, Node, EvalTensor,
// Registration, Status) and kernel helpers (eval tensors, persistent and scratch
// buffers, logging). Built against the real TFLM headers (a TFLM tree on the include
// path: every firmware build, with nothing to define), or, when TFLM_VIT_WHEEL_ABI is
// defined (only the Python wheel's library, CMakeLists.txt), against wheel_abi.h,
// which matches the pinned Python wheel.
#ifndef TFLM_VIT_TFLM_TFLM_API_H_
#define TFLM_VIT_TFLM_TFLM_API_H_

#include <stdarg.h>

#ifndef TFLM_VIT_WHEEL_ABI

#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"

namespace tv_tflm {

using Context = TfLiteContext;
using Node = TfLiteNode;
using EvalTensor = TfLiteEvalTensor;
using Registration = TFLMRegistration;
using Status = TfLiteStatus;
constexpr Status kOk = kTfLiteOk;
constexpr Status kError = kTfLiteError;
constexpr TfLiteType kTypeFloat32 = kTfLiteFloat32;
constexpr TfLiteType kTypeInt32 = kTfLiteInt32;
constexpr TfLiteType kTypeInt8 = kTfLiteInt8;
constexpr int32_t kBuiltinCustom = 32;  // BuiltinOperator_CUSTOM

inline EvalTensor* GetEvalTensor(const Context* c, int index) {
  return tflite::GetMicroContext(c)->GetEvalTensor(index);
}
inline void* AllocatePersistentBuffer(Context* c, size_t bytes) {
  return tflite::GetMicroContext(c)->AllocatePersistentBuffer(bytes);
}
inline Status RequestScratchBufferInArena(Context* c, size_t bytes, int* index) {
  return tflite::GetMicroContext(c)->RequestScratchBufferInArena(bytes, index);
}
inline void* GetScratchBuffer(Context* c, int index) {
  return tflite::GetMicroContext(c)->GetScratchBuffer(index);
}
inline void VLog(const char* format, va_list args) { VMicroPrintf(format, args); }

using QuantizationParams = TfLiteQuantizationParams;

// The tensor's per-tensor quantization (Prepare only: a temporary TfLiteTensor), false
// if TFLM gives no tensor.
inline bool GetQuantization(Context* c, const Node* node, bool output, int index,
                            QuantizationParams* q) {
  tflite::MicroContext* mc = tflite::GetMicroContext(c);
  TfLiteTensor* t = output ? mc->AllocateTempOutputTensor(node, index)
                           : mc->AllocateTempInputTensor(node, index);
  if (t == nullptr) return false;
  *q = t->params;
  mc->DeallocateTempTfLiteTensor(t);
  return true;
}

}  // namespace tv_tflm

#else
#include "wheel_abi.h"
#endif

#endif  // TFLM_VIT_TFLM_TFLM_API_H_
