// Example firmware app: one ViT inference with TFLM and tflm-vit's ops.
//
// The model comes from `tflm-vit export-c planned.tflite -o <dir>/model`, which writes
// model.h / model.cc: the flatbuffer, the arena size for the target (from the
// model's offline plan) and RegisterOps() for exactly the ops it uses. The board layer
// (boards/<board>/board.cc) sets up the console and ends the run.
//
// It runs the model on a test pattern, prints the class scores and the arena TFLM
// used, and checks that TFLM used no more than the arena export-c sized for it.
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "model.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/schema/schema_generated.h"

namespace {

alignas(16) uint8_t g_arena[model::kArenaSize];

}  // namespace

int main() {
  BoardInit();
  const tflite::Model* m = tflite::GetModel(model::kModel);
  static model::OpResolver resolver;
  if (model::RegisterOps(resolver) != kTfLiteOk) {
    MicroPrintf("tflm-vit example: op registration failed");
    BoardExit(1);
  }
  tflite::MicroInterpreter interpreter(m, resolver, g_arena, sizeof(g_arena));
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    MicroPrintf("tflm-vit example: AllocateTensors failed in %u bytes",
                static_cast<unsigned>(sizeof(g_arena)));
    BoardExit(1);
  }
  // A test pattern in place of a camera frame: a diagonal gradient.
  TfLiteTensor* input = interpreter.input(0);
  for (size_t i = 0; i < input->bytes; ++i) {
    input->data.int8[i] = static_cast<int8_t>((i * 7) % 256 - 128);
  }
  if (interpreter.Invoke() != kTfLiteOk) {
    MicroPrintf("tflm-vit example: Invoke failed");
    BoardExit(1);
  }
  const TfLiteTensor* output = interpreter.output(0);
  int best = 0;
  for (size_t i = 0; i < output->bytes; ++i) {
    MicroPrintf("score %d: %d", static_cast<int>(i), output->data.int8[i]);
    if (output->data.int8[i] > output->data.int8[best]) best = static_cast<int>(i);
  }
  MicroPrintf("class %d; arena used %u of %u bytes", best,
              static_cast<unsigned>(interpreter.arena_used_bytes()),
              static_cast<unsigned>(model::kArenaSize));
  MicroPrintf("TFLM_VIT_EXAMPLE_PASS");
  BoardExit(0);
}
