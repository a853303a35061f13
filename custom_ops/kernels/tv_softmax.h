// Softmax over one row of int32 attention scores, integer only, in place.
// Scores are accumulators whose real value is score * S; `to_q16` encodes S * 2^16.
// The row is replaced by probabilities in Q15 (1.0 = 32768), summing to ~2^15.
#ifndef TFLM_VIT_KERNELS_TV_SOFTMAX_H_
#define TFLM_VIT_KERNELS_TV_SOFTMAX_H_

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

tv_status tv_softmax_row_q15(int32_t* row, int32_t n, tv_quant_multiplier to_q16,
                             const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_SOFTMAX_H_
