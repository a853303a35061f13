"""TV_LOW_RANK_LINEAR: MCUFormer's low-rank linear, x·U·V through an int8 rank-wide
middle, bit-exact with the two FULLY_CONNECTEDs it replaces (twin:
tflm_vit/twins/linear.py; kernel: custom_ops/kernels/tv_linear.c)."""

from tflm_vit.ops.spec import OVER_INPUT0, OpSpec


def _features(f: dict, out: int) -> tuple[int, int]:
    n, r = f["tokens"], f["rank"]
    return n * r * (f["in_features"] + f["out_features"]), n * (r + f["out_features"])


SPEC = OpSpec(
    code="TV_LOW_RANK_LINEAR", kind=4,
    fields=("tokens", "in_features", "rank", "out_features", "input_offset",
            "mid_zero_point", "output_offset"),
    overwrite=OVER_INPUT0, stock_lsb_bound=0, exact_with_stock=True,
    error_kind="low_rank_linear", features=_features, twin="tflm_vit.twins.linear")
