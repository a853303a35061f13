#include "op_common.h"

#include <string.h>

#include "options_reader.h"

namespace tv_tflm {

#if !defined(TF_LITE_STRIP_ERROR_STRINGS)
// TFLM's logger is printf-like and takes a va_list; this gives it one.
void Log(const char* format, ...) {
  va_list args;
  va_start(args, format);
  VLog(format, args);
  va_end(args);
}
#endif

OpData* ParseOptions(Context* context, const char* op, int32_t kind, int32_t expected_fields,
                     const char* buffer, size_t length) {
  tv_options parsed;
  const char* what = nullptr;
  const char* key = nullptr;
  if (!ReadOptions(buffer, length, kind, expected_fields, &parsed, &what, &key)) {
    TV_ERROR(op, "%s%s%s (%u bytes)", what, key ? ": " : "", key ? key : "",
             static_cast<unsigned>(length));
    return nullptr;
  }
  auto* out = static_cast<OpData*>(AllocatePersistentBuffer(context, sizeof(OpData)));
  if (out == nullptr) {
    TV_ERROR(op, "could not allocate %u bytes of op data", static_cast<unsigned>(sizeof(OpData)));
    return nullptr;
  }
  memcpy(&out->options, &parsed, sizeof(parsed));
  out->scratch_index = -1;
  return out;
}

int NumInputs(const Node* node) { return node->inputs ? node->inputs->size : 0; }
int NumOutputs(const Node* node) { return node->outputs ? node->outputs->size : 0; }

const EvalTensor* Input(const Context* context, const Node* node, int index) {
  if (index >= NumInputs(node) || node->inputs->data[index] < 0) return nullptr;
  return GetEvalTensor(context, node->inputs->data[index]);
}

EvalTensor* Output(const Context* context, const Node* node, int index) {
  if (index >= NumOutputs(node) || node->outputs->data[index] < 0) return nullptr;
  return GetEvalTensor(context, node->outputs->data[index]);
}

int Rank(const EvalTensor* t) { return t->dims ? t->dims->size : 0; }

int Dim(const EvalTensor* t, int i) {
  const int rank = Rank(t);
  return t->dims->data[i < 0 ? rank + i : i];
}

int64_t ElementCount(const EvalTensor* t) {
  int64_t n = 1;
  for (int i = 0; i < Rank(t); ++i) n *= t->dims->data[i];
  return n;
}

bool CheckCounts(const char* op, const Node* node, int min_inputs, int max_inputs,
                 int outputs) {
  if (NumInputs(node) < min_inputs || NumInputs(node) > max_inputs) {
    TV_ERROR(op, "takes %d to %d inputs, got %d", min_inputs, max_inputs, NumInputs(node));
    return false;
  }
  if (NumOutputs(node) != outputs) {
    TV_ERROR(op, "has %d outputs, expected %d", NumOutputs(node), outputs);
    return false;
  }
  return true;
}

static const char* TypeName(int type) {
  switch (type) {
    case kTypeInt8: return "int8";
    case kTypeInt32: return "int32";
    case kTypeFloat32: return "float32";
    default: return "another type";
  }
}

bool CheckTensor(const char* op, const char* name, const EvalTensor* t, int type) {
  if (t == nullptr) {
    TV_ERROR(op, "tensor '%s' is missing", name);
    return false;
  }
  if (t->type != type) {
    TV_ERROR(op, "tensor '%s' must be %s, got %s (type %d)", name, TypeName(type),
             TypeName(t->type), static_cast<int>(t->type));
    return false;
  }
  return true;
}

bool CheckActivation(const char* op, const char* name, const EvalTensor* t, int32_t tokens,
                     int32_t features) {
  if (!CheckTensor(op, name, t, kTypeInt8)) return false;
  const int rank = Rank(t);
  if (rank < 2 || rank > 4) {
    TV_ERROR(op, "tensor '%s' must have rank 2 to 4 ([.., tokens, features]), got rank %d", name,
             rank);
    return false;
  }
  if (Dim(t, -1) != features || ElementCount(t) != static_cast<int64_t>(tokens) * features) {
    TV_ERROR(op, "tensor '%s' must hold %d tokens of %d features, got %d elements, last dim %d",
             name, static_cast<int>(tokens), static_cast<int>(features),
             static_cast<int>(ElementCount(t)), Dim(t, -1));
    return false;
  }
  return true;
}

bool CheckZeroPoint(const char* op, const char* name, Context* context, const Node* node,
                    bool output, int index, int32_t expected) {
  QuantizationParams q;
  if (!GetQuantization(context, node, output, index, &q)) {
    TV_ERROR(op, "tensor '%s': TFLM gave no quantization to check", name);
    return false;
  }
  if (q.zero_point != expected) {
    TV_ERROR(op, "tensor '%s' has zero point %d, the op's options were made for %d "
             "(re-run tflm-vit convert on the exported model)", name,
             static_cast<int>(q.zero_point), static_cast<int>(expected));
    return false;
  }
  return true;
}

bool CheckShape(const char* op, const char* name, const EvalTensor* t, int rank,
                const int32_t* dims) {
  if (Rank(t) != rank) {
    TV_ERROR(op, "tensor '%s' must have rank %d, got rank %d", name, rank, Rank(t));
    return false;
  }
  for (int i = 0; i < rank; ++i) {
    if (Dim(t, i) != dims[i]) {
      TV_ERROR(op, "tensor '%s' must have dim %d = %d, got %d", name, i,
               static_cast<int>(dims[i]), Dim(t, i));
      return false;
    }
  }
  return true;
}

}  // namespace tv_tflm
