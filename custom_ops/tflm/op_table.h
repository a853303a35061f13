// The op table: our TFLM op registrations, one per op (the NumPy twins are
// tflm_vit.twins; the wheel's loader of this library is tflm_vit.op_library). Firmware
// apps add them all with AddTflmVitOps (tflm_vit_ops.h); the Python wheel gets them
// from the registerer symbol TflmVitRegisterOps (wheel_registerer.cc).
#ifndef TFLM_VIT_TFLM_OP_TABLE_H_
#define TFLM_VIT_TFLM_OP_TABLE_H_

#include "tflm_api.h"

extern "C" {
#include "tv_op_fields.h"
}

namespace tv_tflm {

const Registration* Register_TV_LAYERNORM();
const Registration* Register_TV_GELU();
const Registration* Register_TV_LINEAR();
const Registration* Register_TV_LOW_RANK_LINEAR();
const Registration* Register_TV_ATTENTION();
const Registration* Register_TV_MLP();
const Registration* Register_TV_PATCH_EMBED();

struct NamedRegistration {
  const char* name;  // the custom code the converter writes
  const Registration* (*get)();
};

constexpr NamedRegistration kAllOps[] = {
    {"TV_LAYERNORM", Register_TV_LAYERNORM},
    {"TV_GELU", Register_TV_GELU},
    {"TV_LINEAR", Register_TV_LINEAR},
    {"TV_LOW_RANK_LINEAR", Register_TV_LOW_RANK_LINEAR},
    {"TV_ATTENTION", Register_TV_ATTENTION},
    {"TV_MLP", Register_TV_MLP},
    {"TV_PATCH_EMBED", Register_TV_PATCH_EMBED},
};
constexpr int kNumOps = sizeof(kAllOps) / sizeof(kAllOps[0]);
static_assert(kNumOps == TV_OP_COUNT,
              "kAllOps must register every op kind of tv_op_fields.h (tflm_vit/twins/options.py)");

}  // namespace tv_tflm

#endif  // TFLM_VIT_TFLM_OP_TABLE_H_
