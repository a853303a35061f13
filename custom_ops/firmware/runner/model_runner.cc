// Runs any model tflm-vit produces (stock, converted, planned) on the target, for the
// on-target tests and benchmarks: the model and its input come from host files through
// semihosting, so one binary per (CPU, kernels) serves every model.
//
//   model_runner MODEL.tflite INPUT.bin ARENA_BYTES [allocations]
//
// Prints "arena_used_bytes N" (TFLM's recording allocator), "op_tags" (the op of every
// node, in the order Invoke ran them), "output <hex bytes>" and the pass marker
// TFLM_VIT_RUN_PASS; "allocations" adds the recording allocator's report. Any failure
// prints TFLM_VIT_RUN_FAIL and a reason (TFLM's own message comes first through
// MicroPrintf) and exits non-zero.
//
// Instruction counting (tflm_vit/firmware/instructions.py) finds Invoke() and each op in QEMU's
// per-instruction trace by the addresses of the tv_mark_* functions below: the
// profiler TFLM calls around every op calls them, so the op's own work lies between
// tv_mark_op_begin and tv_mark_op_end.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "runner_ops.h"  // generated: every op tflm-vit supports (tflm_vit.export_c)
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/micro/recording_micro_interpreter.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

// The largest arena a run may ask for; mps2's SSRAM1 (4 MB) also holds code, model
// and input.
constexpr size_t kMaxArena = 1536 * 1024;
alignas(16) uint8_t g_arena[kMaxArena];

[[noreturn]] void Fail(const char* why) {
  printf("TFLM_VIT_RUN_FAIL %s\n", why);
  BoardExit(1);
}

// The file's bytes in a 16-byte-aligned heap block (TFLM reads flatbuffers in place).
uint8_t* ReadFile(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (f == nullptr) return nullptr;
  fseek(f, 0, SEEK_END);
  const long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t* block = n < 0 ? nullptr : static_cast<uint8_t*>(malloc(static_cast<size_t>(n) + 16));
  if (block == nullptr) {
    fclose(f);
    return nullptr;
  }
  uint8_t* data = block + (16 - reinterpret_cast<uintptr_t>(block) % 16) % 16;
  const size_t got = fread(data, 1, static_cast<size_t>(n), f);
  fclose(f);
  if (got != static_cast<size_t>(n)) return nullptr;
  *size = got;
  return data;
}

// The markers: distinct bodies (so identical-code folding cannot merge them), never
// inlined, kept by the linker; their addresses are read from the ELF with nm.
volatile uint32_t g_mark;
extern "C" __attribute__((noinline, used)) void tv_mark_invoke_begin() { g_mark = 1; }
extern "C" __attribute__((noinline, used)) void tv_mark_invoke_end() { g_mark = 2; }
extern "C" __attribute__((noinline, used)) void tv_mark_op_begin() { g_mark = 3; }
extern "C" __attribute__((noinline, used)) void tv_mark_op_end() { g_mark = 4; }

// Records each op's tag and brackets its Eval with the markers.
class MarkerProfiler : public tflite::MicroProfilerInterface {
 public:
  uint32_t BeginEvent(const char* tag) override {
    if (count_ < kMaxOps) tags_[count_] = tag;
    ++count_;
    tv_mark_op_begin();  // last: the bookkeeping above is not the op's
    return 0;
  }
  void EndEvent(uint32_t) override { tv_mark_op_end(); }
  void PrintTags() const {
    printf("op_tags");
    for (uint32_t i = 0; i < count_ && i < kMaxOps; ++i) printf(" %s", tags_[i]);
    printf("\n");
  }

 private:
  static constexpr uint32_t kMaxOps = 1024;
  const char* tags_[kMaxOps] = {};
  uint32_t count_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  BoardInit();
  if (argc < 4) Fail("usage: model_runner MODEL INPUT ARENA_BYTES [allocations]");
  size_t model_size = 0, input_size = 0;
  const uint8_t* model_data = ReadFile(argv[1], &model_size);
  if (model_data == nullptr) Fail("cannot read the model file");
  const uint8_t* input_data = ReadFile(argv[2], &input_size);
  if (input_data == nullptr) Fail("cannot read the input file");
  const size_t arena = static_cast<size_t>(strtoul(argv[3], nullptr, 10));
  if (arena == 0 || arena > kMaxArena) Fail("arena size must be 1 .. 1572864 bytes");

  const tflite::Model* model = tflite::GetModel(model_data);
  static runner_ops::OpResolver resolver;
  if (runner_ops::RegisterOps(resolver) != kTfLiteOk) Fail("op registration failed");
  static MarkerProfiler profiler;
  tflite::RecordingMicroInterpreter interpreter(model, resolver, g_arena, arena, nullptr,
                                                &profiler);
  if (interpreter.AllocateTensors() != kTfLiteOk) Fail("AllocateTensors failed");
  TfLiteTensor* input = interpreter.input(0);
  if (input->bytes != input_size) Fail("input file size differs from the input tensor");
  memcpy(input->data.raw, input_data, input_size);
  tv_mark_invoke_begin();
  const TfLiteStatus invoked = interpreter.Invoke();
  tv_mark_invoke_end();
  if (invoked != kTfLiteOk) Fail("Invoke failed");

  printf("arena_used_bytes %u\n", static_cast<unsigned>(interpreter.arena_used_bytes()));
  if (argc > 4 && strcmp(argv[4], "allocations") == 0) {
    interpreter.GetMicroAllocator().PrintAllocations();
  }
  profiler.PrintTags();
  const TfLiteTensor* output = interpreter.output(0);
  printf("output ");
  for (size_t i = 0; i < output->bytes; ++i) printf("%02x", output->data.uint8[i]);
  printf("\nTFLM_VIT_RUN_PASS\n");
  BoardExit(0);
}
