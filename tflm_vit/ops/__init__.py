"""Our integer ViT ops on the Python side: for each op, how the converter derives its
integer parameters from the model's scales, the NumPy reference that the C kernel
(custom_ops/kernels) matches bit for bit, and the float reference its error is
measured against."""
