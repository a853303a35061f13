// GELU on int8, two ways:
//  - tv_lut_s8: a 256-entry table the converter computes from the exact float GELU
//    and the input/output quantisation (exact to float-then-quantise rounding);
//  - tv_gelu_shift_s8: the integer arithmetic approximation of the MCUFormer / I-ViT
//    family, x * sigmoid(1.702 x) with the integer exp, kept for comparison.
// Both may run in place.
#ifndef TFLM_VIT_KERNELS_TV_GELU_H_
#define TFLM_VIT_KERNELS_TV_GELU_H_

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

// out[i] = lut[in[i] + 128].
tv_status tv_lut_s8(const int8_t* lut, const int8_t* input, int8_t* output, int32_t count,
                    const char** what);

typedef struct {
  int32_t input_zero_point;
  int32_t output_zero_point;
  tv_quant_multiplier to_q16;   // 1.702 * s_x * 2^16: x_int -> 1.702 x in Q16
  tv_quant_multiplier to_out;   // s_x / (s_y * 2^22): x_int * sigmoid_q22 -> output LSB
} tv_gelu_shift_params;

tv_status tv_gelu_shift_s8(const tv_gelu_shift_params* p, const int8_t* input,
                           int8_t* output, int32_t count, const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_GELU_H_
