// Fully connected layers over N tokens, int8 in/out, int32 accumulation, bit-exact
// with TFLite's int8 FULLY_CONNECTED (per-channel multipliers).
//
// Token overwriting (MCUFormer): the output may start at the same address as the
// input. Each token's output row is built in a caller-owned row buffer and then
// copied over the input bytes that are already consumed: forward token order when
// out_features <= in_features, reverse order when larger. Any other overlap of
// input and output is refused.
#ifndef TFLM_VIT_KERNELS_TV_LINEAR_H_
#define TFLM_VIT_KERNELS_TV_LINEAR_H_

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

// One linear map in -> out. All arrays are caller-owned (in TFLM: constant tensors).
typedef struct {
  int32_t in_features;
  int32_t out_features;
  const int8_t* weights;      // [out_features][in_features]
  const int32_t* bias;        // [out_features] or NULL
  const int32_t* multipliers; // [out_features], TFLite convention
  const int32_t* shifts;      // [out_features]
  int32_t input_offset;       // minus the input zero point
  int32_t output_offset;      // the output zero point
  // 1 when no channel shifts left (every shift <= 0), so CMSIS-NN's requantisation,
  // which wraps a left-shifted accumulator where ours saturates, gives our integers and
  // tv_linear_run_s8 may hand a whole token matrix to CMSIS-NN. Derived, not an input:
  // tv_linear_s8 sets it; callers of tv_linear_run_s8 set it once from
  // tv_linear_right_shifts_only (a TFLM op in Prepare). 0 is always correct.
  int32_t right_shifts_only;
} tv_linear_stage;

tv_status tv_linear_validate(const tv_linear_stage* s, const char** what);
int32_t tv_linear_right_shifts_only(const tv_linear_stage* s);

// One token: out[o] = clamp(requant(bias[o] + sum_i w[o][i] * (in[i] + input_offset))
// + output_offset). `out` must not overlap `in`.
void tv_linear_row_s8(const tv_linear_stage* s, const int8_t* in, int8_t* out);

size_t tv_linear_scratch_size(const tv_linear_stage* s);
tv_status tv_linear_s8(const tv_linear_stage* s, int32_t tokens, const int8_t* input,
                       int8_t* output, int8_t* scratch, const char** what);
// tv_linear_run_s8: the same without validating the params again, for callers that
// validated them once (a TFLM op in Prepare); only the pointers are checked.
tv_status tv_linear_run_s8(const tv_linear_stage* s, int32_t tokens, const int8_t* input,
                           int8_t* output, int8_t* scratch, const char** what);

// W ~ U.V computed per token through an r-sized int8 temporary (u: in -> r,
// v: r -> out), so the N x r intermediate never exists.
size_t tv_low_rank_linear_scratch_size(const tv_linear_stage* u, const tv_linear_stage* v);
tv_status tv_low_rank_linear_s8(const tv_linear_stage* u, const tv_linear_stage* v,
                                int32_t tokens, const int8_t* input, int8_t* output,
                                int8_t* scratch, const char** what);
// tv_low_rank_linear_run_s8: the same without validating the params again, for callers that
// validated them once (a TFLM op in Prepare); only the pointers are checked.
tv_status tv_low_rank_linear_run_s8(const tv_linear_stage* u, const tv_linear_stage* v,
                                    int32_t tokens, const int8_t* input, int8_t* output,
                                    int8_t* scratch, const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_LINEAR_H_
