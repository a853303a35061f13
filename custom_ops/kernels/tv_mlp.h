// Fused MLP per token: expand (dense or low-rank), GELU by lookup table, project
// (dense or low-rank). The N x hidden tensor never exists: scratch holds two rows
// of the widest stage. The output may start at the input (token overwriting).
//
// Each stage is bit-exact with TFLite's FULLY_CONNECTED and the table with
// tv_lut_s8, so the fused op equals the unfused chain exactly.
#ifndef TFLM_VIT_KERNELS_TV_MLP_H_
#define TFLM_VIT_KERNELS_TV_MLP_H_

#include "tv_linear.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TV_MLP_MAX_STAGES 2

typedef struct {
  tv_linear_stage up[TV_MLP_MAX_STAGES];  // in -> hidden (1 stage) or in -> r -> hidden
  int32_t up_count;
  const int8_t* gelu_lut;                 // 256 entries, indexed by value + 128
  tv_linear_stage down[TV_MLP_MAX_STAGES];  // hidden -> out, or hidden -> r -> out
  int32_t down_count;
} tv_mlp_params;

tv_status tv_mlp_validate(const tv_mlp_params* p, const char** what);
size_t tv_mlp_scratch_size(const tv_mlp_params* p);
tv_status tv_mlp_s8(const tv_mlp_params* p, int32_t tokens, const int8_t* input,
                    int8_t* output, int8_t* scratch, const char** what);
// tv_mlp_run_s8: the same without validating the params again, for callers that
// validated them once (a TFLM op in Prepare); only the pointers are checked.
tv_status tv_mlp_run_s8(const tv_mlp_params* p, int32_t tokens, const int8_t* input,
                        int8_t* output, int8_t* scratch, const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_MLP_H_
