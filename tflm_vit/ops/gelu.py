"""TV_GELU: GELU as a 256-entry table (any scale, exact or tanh form) or the shift form
x*sigmoid(1.702x) (twin: tflm_vit/twins/gelu.py; kernel: custom_ops/kernels/tv_gelu.c).
Stock computes GELU through int8 LOGISTIC and MUL (or the builtin GELU, which the wheel
lacks); ours may differ from stock by stock's own error plus 3 LSB (the shift form)."""

from tflm_vit.ops.spec import OVER_INPUT0, OpSpec

MODE_TABLE, MODE_SHIFT = 0, 1  # the `mode` option

SPEC = OpSpec(
    code="TV_GELU", kind=2,
    fields=("mode", "input_zero_point", "output_zero_point", "q16_multiplier",
            "q16_shift", "out_multiplier", "out_shift"),
    overwrite=OVER_INPUT0, stock_lsb_bound=3, exact_with_stock=False,
    error_kind="gelu", features=lambda f, out: (0, out),
    twin="tflm_vit.twins.gelu",
    # The table encodes both quantizations; the shift form checks both zero points.
    zero_point_checks=lambda f: (("input", 0), ("output", 0)) if f["mode"] == MODE_SHIFT
    else ())
