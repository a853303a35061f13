// Fused multi-head attention: per head and per query row, the scores against all
// keys, the integer softmax and the probability-weighted sum of V. The N x N score
// map never exists; scratch is one int32 score row plus one output row.
//
// q, k, v, output: int8 [tokens][heads * head_dim], head h in columns
// [h*head_dim, (h+1)*head_dim). The output may start at q (token overwriting: a
// query row is dead once its output row is done); it must not overlap k or v.
#ifndef TFLM_VIT_KERNELS_TV_ATTENTION_H_
#define TFLM_VIT_KERNELS_TV_ATTENTION_H_

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t tokens;
  int32_t heads;
  int32_t head_dim;
  int32_t q_offset;                  // minus the zero points
  int32_t k_offset;
  int32_t v_offset;
  tv_quant_multiplier score_to_q16;  // s_q * s_k * attention scale * 2^16
  tv_quant_multiplier out_multiplier;  // s_v / (s_out * 2^15)
  int32_t output_offset;             // output zero point
} tv_attention_params;

tv_status tv_attention_validate(const tv_attention_params* p, const char** what);
size_t tv_attention_scratch_size(const tv_attention_params* p);
tv_status tv_attention_s8(const tv_attention_params* p, const int8_t* q, const int8_t* k,
                          const int8_t* v, int8_t* output, void* scratch, const char** what);
// tv_attention_run_s8: the same without validating the params again, for callers that
// validated them once (a TFLM op in Prepare); only the pointers are checked.
tv_status tv_attention_run_s8(const tv_attention_params* p, const int8_t* q, const int8_t* k,
                              const int8_t* v, int8_t* output, void* scratch, const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_ATTENTION_H_
