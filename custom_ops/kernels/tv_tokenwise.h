// Running a per-token function over N tokens whose output may overwrite the input
// (token overwriting). Internal to the kernels.
#ifndef TFLM_VIT_KERNELS_TV_TOKENWISE_H_
#define TFLM_VIT_KERNELS_TV_TOKENWISE_H_

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

// Computes one token: reads in_row (in_width bytes), writes out_row (out_width bytes);
// out_row never overlaps in_row.
typedef void (*tv_token_fn)(const void* ctx, const int8_t* in_row, int8_t* out_row,
                            int8_t* scratch);

// 1 when the rows of `tokens` tokens at input (in_width bytes each) and at output
// (out_width bytes each) share a byte. Addresses compared as integers: the two may or
// may not be one object.
static inline int tv_token_rows_overlap(const int8_t* input, int32_t in_width,
                                        const int8_t* output, int32_t out_width,
                                        int32_t tokens) {
  const uintptr_t in0 = (uintptr_t)input, out0 = (uintptr_t)output;
  return in0 < out0 + (uintptr_t)tokens * (uintptr_t)out_width &&
         out0 < in0 + (uintptr_t)tokens * (uintptr_t)in_width;
}

// Calls fn for every token. When output starts at input, the row goes through
// row_buffer (out_width bytes) and tokens run forward (out <= in) or backward
// (out > in), so no unread input byte is overwritten. Other overlaps are refused.
tv_status tv_for_each_token(tv_token_fn fn, const void* ctx, int32_t tokens,
                            const int8_t* input, int32_t in_width, int8_t* output,
                            int32_t out_width, int8_t* row_buffer, int8_t* scratch,
                            const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_TOKENWISE_H_
