// The scratch each of our ops asks TFLM for, from its options blob alone: the kernels'
// own *_scratch_size functions fed the option fields they depend on. The TFLM adapters
// call those functions with their full params; the Python memory model calls this (via
// tflm_vit._kernels), so the sizes have one definition, here in C.
#ifndef TFLM_VIT_KERNELS_TV_OP_SCRATCH_H_
#define TFLM_VIT_KERNELS_TV_OP_SCRATCH_H_

#include "tv_options.h"

#ifdef __cplusplus
extern "C" {
#endif

// Bytes of the one scratch buffer the op requests (0: it requests none).
tv_status tv_op_scratch_size(const tv_options* options, size_t* bytes, const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_OP_SCRATCH_H_
