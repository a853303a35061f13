// The few TFLM types and helpers our adapters use, declared by us to match the
// pinned tflite-micro wheel (0.dev20261023182759, x86-64); facts and offsets in
// shared/reference/wheel_facts.md. Used when no TFLM source tree is present. The
// layouts are asserted below and re-checked at registration time
// (wheel_registerer.cc): a wheel that differs is refused, never written into.
//
// Each type has the *shape* TFLM gives it (a union where TFLM has a union, an enum
// where TFLM has an enum), so code that compiles here compiles against a TFLM tree:
// tests/test_firmware.py builds the adapters both ways with -Werror.
//
// The wheel's _runtime.so is loaded privately by Python, so its exported helpers are
// not linkable by name: the registerer looks them up (dlsym) and fills WheelApi.
#ifndef TFLM_VIT_TFLM_WHEEL_ABI_H_
#define TFLM_VIT_TFLM_WHEEL_ABI_H_

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

namespace tv_tflm {

// tflite::micro::TfLiteContext in the wheel: only a MicroContext pointer. Opaque here.
struct Context;

struct IntArray {
  int size;
  int data[1];  // flexible in TFLM; only data[0..size) is read
};

struct Node {
  IntArray* inputs;
  IntArray* outputs;
  IntArray* intermediates;
  void* user_data;
  void* builtin_data;
  const void* custom_initial_data;
  int custom_initial_data_size;
};

// TfLiteType: the values our adapters name.
enum Type : int { kTypeFloat32 = 1, kTypeInt32 = 2, kTypeInt8 = 9 };

// TfLitePtrUnion: TFLM's tensor data pointer is a union; the raw pointer is `.data`.
union PtrUnion {
  int32_t* i32;
  uint32_t* u32;
  int64_t* i64;
  uint64_t* u64;
  float* f;
  double* f64;
  char* raw;
  const char* raw_const;
  uint8_t* uint8;
  bool* b;
  int16_t* i16;
  uint16_t* ui16;
  int8_t* int8;
  void* data;
};

struct EvalTensor {
  PtrUnion data;
  IntArray* dims;
  Type type;
};

enum Status : int { kOk = 0, kError = 1 };

struct Registration {
  void* (*init)(Context* context, const char* buffer, size_t length);
  void (*free)(Context* context, void* buffer);
  Status (*prepare)(Context* context, Node* node);
  Status (*invoke)(Context* context, Node* node);
  void (*reset)(Context* context, void* buffer);
  int32_t builtin_code;
  const char* custom_name;
};

static_assert(sizeof(Node) == 56, "TfLiteNode is 56 bytes in the wheel");
static_assert(offsetof(Node, custom_initial_data_size) == 48, "TfLiteNode layout");
static_assert(sizeof(EvalTensor) == 24 && offsetof(EvalTensor, type) == 16,
              "TfLiteEvalTensor layout");
static_assert(sizeof(Registration) == 56 && offsetof(Registration, custom_name) == 48,
              "TFLMRegistration layout");

// The leading fields of the wheel's TfLiteTensor (64 bytes under TF_LITE_STATIC_MEMORY):
// TfLiteQuantization {type, params*}, then the per-tensor affine parameters.
struct QuantizationParams {
  float scale;
  int32_t zero_point;
};
struct Tensor {
  int quantization_type;
  void* quantization_params;
  QuantizationParams params;
};
static_assert(offsetof(Tensor, params) == 16, "TfLiteTensor::params is at 16 in the wheel");

// The wheel's exported helpers (tflite::micro::MicroContext* free functions, the
// MicroContext members that make temporary TfLiteTensors, and VMicroPrintf), found by
// the registerer. The members take the MicroContext (the wheel's TfLiteContext holds
// only that pointer) as their first argument.
struct WheelApi {
  EvalTensor* (*get_eval_tensor)(const Context*, int);
  void* (*allocate_persistent_buffer)(Context*, size_t);
  Status (*request_scratch_buffer)(Context*, size_t, int*);
  void* (*get_scratch_buffer)(Context*, int);
  void (*vprintf)(const char*, va_list);
  Tensor* (*allocate_temp_input)(void* micro_context, const Node*, int);
  Tensor* (*allocate_temp_output)(void* micro_context, const Node*, int);
  // MicroInterpreterContext::DeallocateTempTfLiteTensor, virtual slot 6 of the context.
  void (*deallocate_temp)(void* micro_context, Tensor*);
};

extern WheelApi g_wheel_api;

inline EvalTensor* GetEvalTensor(const Context* c, int index) {
  return g_wheel_api.get_eval_tensor(c, index);
}
inline void* AllocatePersistentBuffer(Context* c, size_t bytes) {
  return g_wheel_api.allocate_persistent_buffer(c, bytes);
}
inline Status RequestScratchBufferInArena(Context* c, size_t bytes, int* index) {
  return g_wheel_api.request_scratch_buffer(c, bytes, index);
}
inline void* GetScratchBuffer(Context* c, int index) {
  return g_wheel_api.get_scratch_buffer(c, index);
}
inline void VLog(const char* format, va_list args) { g_wheel_api.vprintf(format, args); }

// The tensor's per-tensor quantization (Prepare only), false if TFLM gives no tensor or
// the context is not the wheel's MicroInterpreterContext (its vtable is checked).
inline bool GetQuantization(Context* c, const Node* node, bool output, int index,
                            QuantizationParams* q) {
  void* micro_context = *reinterpret_cast<void**>(c);
  void* const* vptr = *static_cast<void* const* const*>(micro_context);
  if (vptr[6] != reinterpret_cast<void*>(g_wheel_api.deallocate_temp)) return false;
  Tensor* t = output ? g_wheel_api.allocate_temp_output(micro_context, node, index)
                     : g_wheel_api.allocate_temp_input(micro_context, node, index);
  if (t == nullptr) return false;
  *q = t->params;
  g_wheel_api.deallocate_temp(micro_context, t);
  return true;
}

constexpr int32_t kBuiltinCustom = 32;

}  // namespace tv_tflm

#endif  // TFLM_VIT_TFLM_WHEEL_ABI_H_
