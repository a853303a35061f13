// Shared types of the portable tflm-vit kernels (CMSIS-NN style: plain C, no
// allocation, no TFLM dependency; the caller owns every buffer).
#ifndef TFLM_VIT_KERNELS_TV_TYPES_H_
#define TFLM_VIT_KERNELS_TV_TYPES_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  TV_OK = 0,
  TV_ARG_ERROR = -1,  // a shape, type or parameter is outside what the kernel takes
} tv_status;

// A real multiplier M = multiplier * 2^(shift - 31), |multiplier| in [2^30, 2^31)
// (or 0), TFLite's requantisation convention. A negative multiplier carries a
// negative M (LayerNorm folds a negative gamma into it).
typedef struct {
  int32_t multiplier;
  int32_t shift;
} tv_quant_multiplier;

// Validation reports the first thing that does not hold as a static string naming
// the field ("channels must be > 0"); callers prefix the op name.
#define TV_REQUIRE(cond, msg) \
  do {                        \
    if (!(cond)) {            \
      if (what) *what = msg;  \
      return TV_ARG_ERROR;    \
    }                         \
  } while (0)

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_TYPES_H_
