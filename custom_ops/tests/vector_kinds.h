// Generated from tflm_vit/twins/vectors.py (`python -m tflm_vit.twins.vectors
// --header custom_ops/tests/vector_kinds.h`); do not edit: tests/test_options_header.py checks it
// is current. The kernel kinds of the test-vector tape.
#ifndef TFLM_VIT_TESTS_VECTOR_KINDS_H_
#define TFLM_VIT_TESTS_VECTOR_KINDS_H_

#define TV_VECTORS_MAGIC 0x54565654u

enum {
  KIND_LINEAR = 1,
  KIND_LOW_RANK_LINEAR = 2,
  KIND_LAYERNORM = 3,
  KIND_LUT = 4,
  KIND_GELU_SHIFT = 5,
  KIND_EXP = 6,
  KIND_SOFTMAX = 7,
  KIND_ATTENTION = 8,
  KIND_MLP = 9,
  KIND_PATCH_EMBED = 10,
};

#endif  // TFLM_VIT_TESTS_VECTOR_KINDS_H_
