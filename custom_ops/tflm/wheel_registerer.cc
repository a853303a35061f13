// TflmVitRegisterOps: the registerer symbol the tflite-micro wheel looks up
// (dlsym(RTLD_DEFAULT, name)) and calls with its tflite::PythonOpsResolver when a
// model is loaded with custom_op_registerers=["TflmVitRegisterOps"].
//
// MicroMutableOpResolver<N>::AddCustom is an inline template the wheel does not
// export, so this does what it does, after checking every layout fact it relies on
// (shared/reference/wheel_facts.md). Any mismatch: a message on stderr and `false`
// (Python raises), never a write into an object we do not recognise.
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "op_table.h"
#include "wheel_abi.h"

namespace tv_tflm {

WheelApi g_wheel_api = {};

namespace {

constexpr size_t kRegistrationsOffset = 8;
constexpr size_t kCountOffset = 11208;
constexpr unsigned kCapacity = 200;
constexpr char kResolverVtable[] = "_ZTVN6tflite17PythonOpsResolverE";
constexpr char kResolverTypeinfo[] = "_ZTIN6tflite17PythonOpsResolverE";
constexpr char kBaseTypeinfo[] = "_ZTIN6tflite5micro22MicroMutableOpResolverILj200EEE";
constexpr char kFindOpByName[] = "_ZNK6tflite5micro22MicroMutableOpResolverILj200EE6FindOpEPKc";

using FindOpFn = const Registration* (*)(const void* self, const char* name);

bool Refuse(const char* why) {
  fprintf(stderr, "TflmVitRegisterOps: %s; refusing to register (wheel layout differs from "
                  "the pinned tflite-micro wheel)\n", why);
  return false;
}

// Symbol name and start address of the object holding `address`, or false.
bool SymbolAt(const void* address, const char** name, const void** start, const char** file) {
  Dl_info info;
  if (address == nullptr || dladdr(address, &info) == 0 || info.dli_sname == nullptr) {
    return false;
  }
  *name = info.dli_sname;
  *start = info.dli_saddr;
  if (file) *file = info.dli_fname;
  return true;
}

bool ResolveApi(const char* runtime_path) {
  void* handle = dlopen(runtime_path, RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return Refuse("cannot reopen the wheel's runtime library");
  struct Entry {
    const char* symbol;
    void** slot;
  } entries[] = {
      {"_ZN6tflite5micro25MicroContextGetEvalTensorEPKNS0_13TfLiteContextEi",
       reinterpret_cast<void**>(&g_wheel_api.get_eval_tensor)},
      {"_ZN6tflite5micro36MicroContextAllocatePersistentBufferEPNS0_13TfLiteContextEm",
       reinterpret_cast<void**>(&g_wheel_api.allocate_persistent_buffer)},
      {"_ZN6tflite5micro39MicroContextRequestScratchBufferInArenaEPNS0_13TfLiteContextEmPi",
       reinterpret_cast<void**>(&g_wheel_api.request_scratch_buffer)},
      {"_ZN6tflite5micro28MicroContextGetScratchBufferEPNS0_13TfLiteContextEi",
       reinterpret_cast<void**>(&g_wheel_api.get_scratch_buffer)},
      {"_Z12VMicroPrintfPKcP13__va_list_tag", reinterpret_cast<void**>(&g_wheel_api.vprintf)},
      {"_ZN6tflite5micro12MicroContext23AllocateTempInputTensorEPKNS0_10TfLiteNodeEi",
       reinterpret_cast<void**>(&g_wheel_api.allocate_temp_input)},
      {"_ZN6tflite5micro12MicroContext24AllocateTempOutputTensorEPKNS0_10TfLiteNodeEi",
       reinterpret_cast<void**>(&g_wheel_api.allocate_temp_output)},
      {"_ZN6tflite5micro23MicroInterpreterContext26DeallocateTempTfLiteTensorEPNS0_12TfLiteTensorE",
       reinterpret_cast<void**>(&g_wheel_api.deallocate_temp)},
  };
  bool ok = true;
  for (const Entry& e : entries) {
    *e.slot = dlsym(handle, e.symbol);
    if (*e.slot == nullptr) {
      fprintf(stderr, "TflmVitRegisterOps: helper %s not found in %s\n", e.symbol, runtime_path);
      ok = false;
    }
  }
  dlclose(handle);  // RTLD_NOLOAD took a reference; the library stays loaded by Python
  return ok || Refuse("the wheel does not export the kernel helpers we use");
}

// Checks that `resolver` is the wheel's PythonOpsResolver (a MicroMutableOpResolver<200>)
// and finds the runtime library that holds it.
bool CheckResolver(const void* resolver, FindOpFn* find_op, const char** runtime_path) {
  if (resolver == nullptr) return Refuse("resolver is NULL");
  void* const* vptr = *static_cast<void* const* const*>(resolver);
  const char* name;
  const void* start;
  if (!SymbolAt(vptr, &name, &start, runtime_path) || strcmp(name, kResolverVtable) != 0 ||
      static_cast<const char*>(static_cast<const void*>(vptr)) -
              static_cast<const char*>(start) != 16) {
    return Refuse("resolver's vtable is not tflite::PythonOpsResolver's");
  }
  const void* const* typeinfo = static_cast<const void* const*>(vptr[-1]);
  if (!SymbolAt(typeinfo, &name, &start, nullptr) || strcmp(name, kResolverTypeinfo) != 0) {
    return Refuse("resolver's typeinfo is not tflite::PythonOpsResolver's");
  }
  // A single-inheritance typeinfo: {vptr, name, base typeinfo}.
  if (!SymbolAt(typeinfo[2], &name, &start, nullptr) || strcmp(name, kBaseTypeinfo) != 0) {
    return Refuse("resolver's base is not MicroMutableOpResolver<200>");
  }
  if (!SymbolAt(vptr[1], &name, &start, nullptr) || strcmp(name, kFindOpByName) != 0 ||
      start != vptr[1]) {
    return Refuse("vtable slot 1 is not MicroMutableOpResolver<200>::FindOp(const char*)");
  }
  *find_op = reinterpret_cast<FindOpFn>(vptr[1]);
  return true;
}

}  // namespace
}  // namespace tv_tflm

extern "C" __attribute__((visibility("default"))) bool TflmVitRegisterOps(void* resolver) {
  using namespace tv_tflm;
  FindOpFn find_op = nullptr;
  const char* runtime_path = nullptr;
  if (!CheckResolver(resolver, &find_op, &runtime_path) || !ResolveApi(runtime_path)) {
    return false;
  }
  char* base = static_cast<char*>(resolver);
  auto* registrations = reinterpret_cast<Registration*>(base + kRegistrationsOffset);
  auto* count = reinterpret_cast<unsigned*>(base + kCountOffset);
  if (*count < 1 || *count + kNumOps > kCapacity) {
    fprintf(stderr, "TflmVitRegisterOps: resolver holds %u ops; %d more do not fit in %u\n",
            *count, kNumOps, kCapacity);
    return false;
  }
  for (const NamedRegistration& op : kAllOps) {
    const Registration* existing = find_op(resolver, op.name);
    if (existing != nullptr) {
      // Registered before (a second interpreter on the same resolver): same kernel.
      if (existing->invoke == op.get()->invoke) continue;
      fprintf(stderr, "TflmVitRegisterOps: custom op %s already registered by someone else\n",
              op.name);
      return false;
    }
    const unsigned slot = *count;
    registrations[slot] = *op.get();
    registrations[slot].builtin_code = kBuiltinCustom;
    registrations[slot].custom_name = op.name;
    *count = slot + 1;
    if (find_op(resolver, op.name) != &registrations[slot]) {
      *count = slot;  // roll back
      memset(&registrations[slot], 0, sizeof(Registration));
      return Refuse("a registered op is not found again");
    }
  }
  return true;
}
