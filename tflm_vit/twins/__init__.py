"""The NumPy twins of our C kernels: for each op, how the converter derives its integer
parameters from the model's scales, the NumPy reference that the C kernel
(custom_ops/kernels) matches bit for bit, and the float reference its error is measured
against; plus the op-options codec (options.py, over the kinds and fields each op's
module in tflm_vit/ops declares) and the writer of the kernels' test vectors
(vectors.py).

(Four things are about "ops" here, each named for what it is: tflm_vit.ops, what each
op is (one module per op); tflm_vit.twins, these NumPy twins; tflm_vit.op_library,
which loads the compiled TFLM adapters into the wheel; custom_ops/tflm/op_table.h, the
C table of our ops' registrations.)"""
