// The custom-options blob the converter writes into each of our TFLM ops:
//   bytes 0-3   magic "TVOP"
//   bytes 4-5   format version (little endian), TV_OPTIONS_VERSION
//   bytes 6-7   op kind (tv_op_kind)
//   bytes 8-11  n, the number of int32 fields that follow
//   bytes 12-   n little-endian int32 fields, in the order tv_op_fields.h lists per op
// Scalars only; arrays (weights, requantisation tables, lookup tables) travel as
// constant input tensors, so they stay in flash. Parsing checks every byte count
// and names what is wrong; the Python writer is tflm_vit/twins/options.py.
#ifndef TFLM_VIT_KERNELS_TV_OPTIONS_H_
#define TFLM_VIT_KERNELS_TV_OPTIONS_H_

#include "tv_op_fields.h"
#include "tv_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TV_OPTIONS_VERSION 1
#define TV_OPTIONS_HEADER_BYTES 12
#define TV_OPTIONS_MAX_FIELDS 32

// tv_op_kind (the op kinds) and each op's field positions: tv_op_fields.h, generated
// from tflm_vit/twins/options.py.

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
