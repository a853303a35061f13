// Integer LayerNorm over the channels of each token (MCUFormer): integer mean and
// variance, the square root by a fixed number of Newton iterations, gamma and beta
// folded into per-channel requantisation. int8 in, int8 out; may run in place.
//
// Per token with D channels and raw int8 values x:
//   S = sum x,  d_i = D*x_i - S           (exact: D times the deviation from the mean)
//   v = sum d_i^2 + eps_term              (= D^3 (var_q + eps / s_x^2))
//   r = isqrt(v)                          (>= |d_i|, so |t_i| <= 2^30 below)
//   t_i = round(d_i * 2^30 / r)           (normalised value * 2^30 / sqrt(D))
//   y_i = clamp(zp_out + ((requant(t_i, m_i) + bias_i + 128) >> 8))
// with m_i = gamma_i sqrt(D) 2^8 / (s_y 2^30) and bias_i = round(beta_i 2^8 / s_y):
// the 8 extra fraction bits let beta be added before the one final rounding.
#ifndef TFLM_VIT_KERNELS_TV_LAYERNORM_H_
#define TFLM_VIT_KERNELS_TV_LAYERNORM_H_

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t tokens;
  int32_t channels;
  int32_t output_zero_point;
  int64_t eps_term;              // round(D^3 * eps / s_x^2)
  int32_t sqrt_iterations;       // Newton steps (table: bench/results/isqrt_iterations.md)
  const int32_t* multipliers;    // [channels], signed: carries gamma's sign
  const int32_t* shifts;         // [channels]
  const int32_t* bias;           // [channels], beta in output LSB * 2^8
} tv_layernorm_params;

tv_status tv_layernorm_validate(const tv_layernorm_params* p, const char** what);
size_t tv_layernorm_scratch_size(const tv_layernorm_params* p);  // 0: stats are per token
tv_status tv_layernorm_s8(const tv_layernorm_params* p, const int8_t* input, int8_t* output,
                          const char** what);
// tv_layernorm_run_s8: the same without validating the params again, for callers that
// validated them once (a TFLM op in Prepare); only the pointers are checked.
tv_status tv_layernorm_run_s8(const tv_layernorm_params* p, const int8_t* input, int8_t* output,
                              const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_LAYERNORM_H_
