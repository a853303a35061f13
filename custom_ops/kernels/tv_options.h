// An op's custom options as the kernels see them: int32 fields at the positions
// tv_op_fields.h lists per op. In the model they are a FlexBuffers map (written by
// tflm_vit/twins/options.py, read into this struct once, in Init, by
// custom_ops/tflm/options_reader.cc). Scalars only; arrays (weights, requantisation
// tables, lookup tables) travel as constant input tensors, so they stay in flash.
#ifndef TFLM_VIT_KERNELS_TV_OPTIONS_H_
#define TFLM_VIT_KERNELS_TV_OPTIONS_H_

#include "tv_op_fields.h"
#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TV_OPTIONS_MAX_FIELDS 32

// tv_op_kind (the op kinds) and each op's field positions: tv_op_fields.h, generated
// from tflm_vit/twins/options.py.

typedef struct {
  int32_t kind;
  int32_t count;
  int32_t fields[TV_OPTIONS_MAX_FIELDS];
} tv_options;

// Bytes of our TFLM adapters' persistent op data (OpData in custom_ops/tflm/op_common.h:
// the parsed options and a scratch-buffer index), which the memory model counts in the
// tail; op_common.h static_asserts it. Reading the options costs nothing more: the map
// is read in place in Init.
#define TV_OP_DATA_BYTES (sizeof(tv_options) + sizeof(int32_t))

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_OPTIONS_H_
