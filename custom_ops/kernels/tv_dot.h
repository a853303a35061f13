// The int8 dot products under every matrix op (linear stages, attention scores, patch
// embedding): one int8 vector against four rows of an int8 matrix, both with a zero-point
// offset, into int32 accumulators. Internal to the kernels.
//
// Two implementations, chosen at compile time, giving the same integers:
// - Cortex-M with the DSP extension (M4, M7, M33, M55) in a build with CMSIS-NN
//   (TFLM's OPTIMIZED_KERNEL_DIR=cmsis_nn defines CMSIS_NN): four int8 values per 32-bit
//   load, widened two at a time to 16 bits with the offset added in the same instruction
//   (SXTAB16), multiplied and accumulated two at a time (SMLAD), with CMSIS-NN's
//   intrinsics. An input word is unpacked once for four rows.
// - everywhere else, the portable C loop (the reference the test vectors check first).
// Offsets are in [-127, 128] (zero points of int8 tensors), so every widened value lies
// in [-255, 255] and fits 16 bits; the sums are the plain C sums (no saturation).
#ifndef TFLM_VIT_KERNELS_TV_DOT_H_
#define TFLM_VIT_KERNELS_TV_DOT_H_

#include <stdint.h>

#if defined(CMSIS_NN)
#include "arm_nnsupportfunctions.h"
#if defined(ARM_MATH_DSP)
#define TV_DOT_DSP 1
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

// acc[r] += sum_{c < cols} (x[c] + x_offset) * (w[r * stride + c] + w_offset), r < 4.
static inline void tv_dot4_s8(const int8_t* x, int32_t x_offset, const int8_t* w,
                              int32_t stride, int32_t w_offset, int32_t cols, int32_t* acc) {
  const int8_t* w0 = w;
  const int8_t* w1 = w + stride;
  const int8_t* w2 = w1 + stride;
  const int8_t* w3 = w2 + stride;
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  int32_t c = 0;
#if defined(TV_DOT_DSP)
  const uint32_t xo = ((uint32_t)x_offset << 16) | ((uint32_t)x_offset & 0xFFFFu);
  const uint32_t wo = ((uint32_t)w_offset << 16) | ((uint32_t)w_offset & 0xFFFFu);
#define TV_DOT4_LOOP(WIDEN_LO, WIDEN_HI)                       \
  for (; c + 4 <= cols; c += 4) {                              \
    const int32_t xv = arm_nn_read_s8x4(x + c);                \
    const int32_t x02 = SXTAB16(xo, xv);  /* x[c], x[c+2] */   \
    const int32_t x13 = SXTAB16_RORn(xo, (uint32_t)xv, 8);     \
    int32_t k = arm_nn_read_s8x4(w0 + c);                      \
    a0 = SMLAD(WIDEN_LO(k), x02, a0);                          \
    a0 = SMLAD(WIDEN_HI(k), x13, a0);                          \
    k = arm_nn_read_s8x4(w1 + c);                              \
    a1 = SMLAD(WIDEN_LO(k), x02, a1);                          \
    a1 = SMLAD(WIDEN_HI(k), x13, a1);                          \
    k = arm_nn_read_s8x4(w2 + c);                              \
    a2 = SMLAD(WIDEN_LO(k), x02, a2);                          \
    a2 = SMLAD(WIDEN_HI(k), x13, a2);                          \
    k = arm_nn_read_s8x4(w3 + c);                              \
    a3 = SMLAD(WIDEN_LO(k), x02, a3);                          \
    a3 = SMLAD(WIDEN_HI(k), x13, a3);                          \
  }
#define TV_LO(k) SXTB16(k)
#define TV_HI(k) SXTB16_RORn((uint32_t)(k), 8)
#define TV_LO_OFF(k) SXTAB16(wo, k)
#define TV_HI_OFF(k) SXTAB16_RORn(wo, (uint32_t)(k), 8)
  // Weights without an offset (every linear stage) widen with SXTB16, which needs no
  // offset register in a loop that needs all of them; inlined with a constant 0 the
  // other loop goes.
  if (w_offset == 0) {
    TV_DOT4_LOOP(TV_LO, TV_HI)
  } else {
    TV_DOT4_LOOP(TV_LO_OFF, TV_HI_OFF)
  }
#undef TV_LO
#undef TV_HI
#undef TV_LO_OFF
#undef TV_HI_OFF
#undef TV_DOT4_LOOP
#endif
  for (; c < cols; ++c) {
    const int32_t xc = (int32_t)x[c] + x_offset;
    a0 += xc * ((int32_t)w0[c] + w_offset);
    a1 += xc * ((int32_t)w1[c] + w_offset);
    a2 += xc * ((int32_t)w2[c] + w_offset);
    a3 += xc * ((int32_t)w3[c] + w_offset);
  }
  acc[0] = a0;
  acc[1] = a1;
  acc[2] = a2;
  acc[3] = a3;
}

// sum_{c < cols} (x[c] + x_offset) * (w[c] + w_offset): one row (the rows left over).
static inline int32_t tv_dot1_s8(const int8_t* x, int32_t x_offset, const int8_t* w,
                                 int32_t w_offset, int32_t cols) {
  int32_t a = 0;
  int32_t c = 0;
#if defined(TV_DOT_DSP)
  const uint32_t xo = ((uint32_t)x_offset << 16) | ((uint32_t)x_offset & 0xFFFFu);
  const uint32_t wo = ((uint32_t)w_offset << 16) | ((uint32_t)w_offset & 0xFFFFu);
  for (; c + 4 <= cols; c += 4) {
    const int32_t xv = arm_nn_read_s8x4(x + c);
    const int32_t k = arm_nn_read_s8x4(w + c);
    a = SMLAD(SXTAB16(wo, k), SXTAB16(xo, xv), a);
    a = SMLAD(SXTAB16_RORn(wo, k, 8), SXTAB16_RORn(xo, xv, 8), a);
  }
#endif
  for (; c < cols; ++c) a += ((int32_t)x[c] + x_offset) * ((int32_t)w[c] + w_offset);
  return a;
}

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_DOT_H_
