"""TV_ATTENTION: multi-head scaled dot-product attention fused over q, k, v with an
integer softmax (twin: tflm_vit/twins/attention.py; kernel:
custom_ops/kernels/tv_attention.c). Each query row is read into scratch before row i of
the output overwrites row i of q. Stock computes the probabilities in int8, so ours may
differ from stock by stock's own error plus 2 LSB."""

from tflm_vit.ops.spec import OVER_INPUT0, OpSpec


def _features(f: dict, out: int) -> tuple[int, int]:
    n, h, d = f["tokens"], f["heads"], f["head_dim"]
    return 2 * n * n * h * d, n * n * h + out


SPEC = OpSpec(
    code="TV_ATTENTION", kind=5,
    fields=("tokens", "heads", "head_dim", "q_offset", "k_offset", "v_offset",
            "score_multiplier", "score_shift", "out_multiplier", "out_shift",
            "output_offset"),
    overwrite=OVER_INPUT0, stock_lsb_bound=2, exact_with_stock=False,
    error_kind="attention", features=_features, twin="tflm_vit.twins.attention",
    zero_point_checks=lambda f: (("input", 0), ("input", 1), ("input", 2), ("output", 0)))
