// Shared adapter pieces: option parsing into persistent op data (Init), tensor
// checks that name the op, the tensor and what is wrong (Prepare), and typed access
// (Eval). Every op file is Init / Prepare / Eval plus its registration.
#ifndef TFLM_VIT_TFLM_OP_COMMON_H_
#define TFLM_VIT_TFLM_OP_COMMON_H_

#include <stdint.h>

#include "tflm_api.h"

extern "C" {
#include "tv_options.h"
}

namespace tv_tflm {

// Errors go through TFLM's logger (MicroPrintf's va_list form) with the op name
// prepended at compile time: no libc formatting here, and under
// TF_LITE_STRIP_ERROR_STRINGS every message and its strings compile out, as TFLM's own
// kernels' do. Formats use only %d, %u and %s (TFLM's DebugVsnprintf subset), with
// int32_t cast to int (it is long on arm-none-eabi).
#if defined(TF_LITE_STRIP_ERROR_STRINGS)
template <typename... Args>
inline void Unused(Args&&...) {}
// The format string is dropped; the arguments are still "used", as in TFLM's MicroPrintf.
#define TV_ERROR(op, format, ...) ::tv_tflm::Unused(op, ##__VA_ARGS__)
#else
void Log(const char* format, ...);
#define TV_ERROR(op, format, ...) ::tv_tflm::Log("%s: " format, op, ##__VA_ARGS__)
#endif
// TV_ERROR, then kError: `return TV_FAIL(kOp, "...")` in Prepare / Eval.
#define TV_FAIL(op, ...) (TV_ERROR(op, __VA_ARGS__), ::tv_tflm::kError)

// Every op's persistent data: its parsed options and, for ops with scratch, the
// index Prepare got from RequestScratchBufferInArena.
struct OpData {
  tv_options options;
  int scratch_index;
};
static_assert(sizeof(OpData) == TV_OP_DATA_BYTES,
              "OpData changed: update TV_OP_DATA_BYTES (the memory model reads it)");

// Init: reads the custom options (a FlexBuffers map: options_reader.h) into one
// persistent OpData (nullptr on error, after logging; Prepare then fails with "custom
// options invalid").
OpData* ParseOptions(Context* context, const char* op, int32_t kind, int32_t expected_fields,
                     const char* buffer, size_t length);

int NumInputs(const Node* node);
int NumOutputs(const Node* node);
// nullptr when the input is absent (-1) or the index is past the end.
const EvalTensor* Input(const Context* context, const Node* node, int index);
EvalTensor* Output(const Context* context, const Node* node, int index);

int64_t ElementCount(const EvalTensor* t);
int Rank(const EvalTensor* t);
int Dim(const EvalTensor* t, int i);  // negative i counts from the end

// Each returns false after logging which op / tensor / property is wrong.
bool CheckCounts(const char* op, const Node* node, int min_inputs, int max_inputs,
                 int outputs);
bool CheckTensor(const char* op, const char* name, const EvalTensor* t, int type);
// Activation [.., tokens, features] of rank 2..4 with leading ones folded into tokens.
bool CheckActivation(const char* op, const char* name, const EvalTensor* t, int32_t tokens,
                     int32_t features);
// An int8 activation's zero point equals the one the op's options were computed with
// (the converter writes offsets from the tensors' quantization; a model edited since
// would compute silently wrong numbers). `output` picks node outputs over inputs.
bool CheckZeroPoint(const char* op, const char* name, Context* context, const Node* node,
                    bool output, int index, int32_t expected);
// A constant of exactly the given dims (rank = count).
bool CheckShape(const char* op, const char* name, const EvalTensor* t, int rank,
                const int32_t* dims);

// TfLiteEvalTensor::data is TFLM's TfLitePtrUnion; its raw pointer is `.data`.
template <typename T>
const T* Data(const EvalTensor* t) {
  return t ? static_cast<const T*>(t->data.data) : nullptr;
}
template <typename T>
T* MutableData(EvalTensor* t) {
  return static_cast<T*>(t->data.data);
}

}  // namespace tv_tflm

#endif  // TFLM_VIT_TFLM_OP_COMMON_H_
