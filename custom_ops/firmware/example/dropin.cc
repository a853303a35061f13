// A user's app with tflm-vit's ops added by the documented drop-in header alone
// (README, "Firmware"): tflm_vit::AddTflmVitOps fills a resolver sized with
// kTflmVitOpCount beside the app's own builtins. Built with make (tflm_vit_dropin,
// Makefile_internal.inc) and CMake by tests/test_firmware.py and run under QEMU, so the
// header the README documents is compiled and linked as a user would.
#include "board.h"
#include "model.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tflm_vit_ops.h"

alignas(16) static uint8_t arena[model::kArenaSize];

int main() {
  BoardInit();
  static tflite::MicroMutableOpResolver<2 + tflm_vit::kTflmVitOpCount> resolver;
  resolver.AddAdd();
  resolver.AddMean();
  if (tflm_vit::AddTflmVitOps(resolver) != kTfLiteOk) BoardExit(1);
  tflite::MicroInterpreter interpreter(tflite::GetModel(model::kModel), resolver, arena,
                                       sizeof(arena));
  if (interpreter.AllocateTensors() != kTfLiteOk || interpreter.Invoke() != kTfLiteOk) {
    BoardExit(2);
  }
  MicroPrintf("TFLM_VIT_DROPIN_PASS");
  BoardExit(0);
}
