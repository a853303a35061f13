// The custom-options blob the converter writes into each of our TFLM ops:
//   bytes 0-3   magic "TVOP"
//   bytes 4-5   format version (little endian), TV_OPTIONS_VERSION
//   bytes 6-7   op kind (tv_op_kind)
//   bytes 8-11  n, the number of int32 fields that follow
//   bytes 12-   n little-endian int32 fields, in the order listed per op below
// Scalars only; arrays (weights, requantisation tables, lookup tables) travel as
// constant input tensors, so they stay in flash. Parsing checks every byte count
// and names what is wrong; the Python writer is tflm_vit/ops/options.py.
#ifndef TFLM_VIT_KERNELS_TV_OPTIONS_H_
#define TFLM_VIT_KERNELS_TV_OPTIONS_H_

#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TV_OPTIONS_VERSION 1
#define TV_OPTIONS_HEADER_BYTES 12
#define TV_OPTIONS_MAX_FIELDS 32

typedef enum {
  TV_OP_LAYERNORM = 1,     // tokens, channels, output_zp, eps_lo, eps_hi, sqrt_iterations
  TV_OP_GELU = 2,          // mode (0 table, 1 shift), input_zp, output_zp,
                           // q16_mult, q16_shift, out_mult, out_shift
  TV_OP_LINEAR = 3,        // tokens, in, out, input_offset, output_offset
  TV_OP_LOW_RANK_LINEAR = 4,  // tokens, in, rank, out, input_offset, mid_zp, output_offset
  TV_OP_ATTENTION = 5,     // tokens, heads, head_dim, q_off, k_off, v_off, score_mult,
                           // score_shift, out_mult, out_shift, output_offset
  TV_OP_MLP = 6,           // tokens, up_count, down_count, then per stage (up..., down...):
                           // in, out, input_offset, output_offset
  TV_OP_PATCH_EMBED = 7,   // height, width, in_channels, patch, out_channels,
                           // first_band_split, output_lead, input_offset, output_offset
} tv_op_kind;

typedef struct {
  int32_t kind;
  int32_t count;
  int32_t fields[TV_OPTIONS_MAX_FIELDS];
} tv_options;

// Bytes of our TFLM adapters' persistent op data (OpData in custom_ops/tflm/op_common.h:
// the parsed options and a scratch-buffer index), which the memory model counts in the
// tail; op_common.h static_asserts it.
#define TV_OP_DATA_BYTES (sizeof(tv_options) + sizeof(int32_t))

// Parses `length` bytes at `buffer` (unaligned is fine) expecting `kind` and exactly
// `expected_fields` fields (or, if expected_fields < 0, at most TV_OPTIONS_MAX_FIELDS).
tv_status tv_options_parse(const void* buffer, size_t length, int32_t kind,
                           int32_t expected_fields, tv_options* out, const char** what);

#ifdef __cplusplus
}  // extern "C"
#endif

#endif  // TFLM_VIT_KERNELS_TV_OPTIONS_H_
