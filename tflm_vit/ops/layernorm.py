"""TV_LAYERNORM: integer LayerNorm over each token's channels (twin:
tflm_vit/twins/layernorm.py; kernel: custom_ops/kernels/tv_layernorm.c). It replaces
stock's MEAN / SQUARED_DIFFERENCE / RSQRT chain, which computes through int8
intermediates, so it may differ from stock by stock's own error plus 2 LSB."""

from tflm_vit.ops.spec import OVER_INPUT0, OpSpec

SPEC = OpSpec(
    code="TV_LAYERNORM", kind=1,
    fields=("tokens", "channels", "output_zero_point", "eps_lo", "eps_hi",
            "sqrt_iterations"),
    overwrite=OVER_INPUT0, stock_lsb_bound=2, exact_with_stock=False,
    error_kind="layernorm", features=lambda f, out: (0, out),
    twin="tflm_vit.twins.layernorm",
    # The input's zero point cancels (D*x - sum x): only the output's is checked.
    zero_point_checks=lambda f: (("output", 0),))
