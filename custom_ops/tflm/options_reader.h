// Reads our ops' custom options: a FlexBuffers map, as TFLM's own custom ops carry
// theirs (tflm_vit/twins/options.py writes it):
//
//   {"op": "TV_LINEAR", "version": 2, "tokens": 49, "in_features": 64, ...}
//
// into tv_options, each field at its tv_op_fields.h position. Plain C++ over
// flatbuffers/flexbuffers.h (TFLM's flatbuffers download, or any flatbuffers >= 2.0):
// no TFLM API, so the wheel's library, the firmware and the Python kernels module share it.
//
// Arena cost: none beyond the op's persistent OpData (TV_OP_DATA_BYTES, which the memory
// model counts): the map is verified and read in place, in Init, without allocating, and
// the fields are copied into OpData there; Prepare and Eval never touch the map again.
#ifndef TFLM_VIT_TFLM_OPTIONS_READER_H_
#define TFLM_VIT_TFLM_OPTIONS_READER_H_

#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "tv_options.h"
}

namespace tv_tflm {

// Fills `out` from `length` bytes at `buffer`, for op kind `kind`. expected_fields >= 0:
// exactly that many fields, the op's whole list; < 0: any leading part of its list, as
// long as no field is skipped (TV_MLP: its head and the stages it has). On failure returns
// false with `what` saying what is wrong and `key` the field concerned (or nullptr);
// both are static strings, so messages compile out with TF_LITE_STRIP_ERROR_STRINGS.
bool ReadOptions(const void* buffer, size_t length, int32_t kind, int32_t expected_fields,
                 tv_options* out, const char** what, const char** key);

}  // namespace tv_tflm

#endif  // TFLM_VIT_TFLM_OPTIONS_READER_H_
