"""TV_LINEAR: a token-wise int8 linear map, bit-exact with TFLite's FULLY_CONNECTED
(twin: tflm_vit/twins/linear.py; kernel: custom_ops/kernels/tv_linear.c), which writes
its output over its input token by token."""

from tflm_vit.ops.spec import OVER_INPUT0, OpSpec

SPEC = OpSpec(
    code="TV_LINEAR", kind=3,
    fields=("tokens", "in_features", "out_features", "input_offset", "output_offset"),
    overwrite=OVER_INPUT0, stock_lsb_bound=0, exact_with_stock=True, error_kind="linear",
    features=lambda f, out: (f["tokens"] * f["in_features"] * f["out_features"], out),
    twin="tflm_vit.twins.linear")
