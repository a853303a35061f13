"""TV_MLP: a block's MLP fused (linear stages up, GELU, linear stages down) so the wide
hidden activation lives only in scratch, a row at a time (twin: tflm_vit/twins/mlp.py;
kernel: custom_ops/kernels/tv_mlp.c). Its options are a head, then one group per stage,
up stages first: the field list depends on the stage counts (`fields_for`)."""

from tflm_vit.ops.spec import OVER_INPUT0, OpSpec

HEAD = ("tokens", "up_count", "down_count")
STAGE = ("in", "out", "input_offset", "output_offset")
# Up to 2 up and 2 down stages (TV_MLP_MAX_STAGES per side, custom_ops/kernels/tv_mlp.h;
# tests/test_options_header.py checks they agree).
MAX_STAGES = 4


def fields_for(up_count: int, down_count: int) -> tuple[str, ...]:
    names = list(HEAD)
    for i in range(up_count + down_count):
        names += [f"stage{i}_{n}" for n in STAGE]
    return tuple(names)


def _features(f: dict, out: int) -> tuple[int, int]:
    stages = f["up_count"] + f["down_count"]
    ins = [f[f"stage{i}_in"] for i in range(stages)]
    outs = [f[f"stage{i}_out"] for i in range(stages)]
    n = f["tokens"]
    return n * sum(i * o for i, o in zip(ins, outs)), n * sum(outs)


SPEC = OpSpec(
    code="TV_MLP", kind=6, fields=None, overwrite=OVER_INPUT0, stock_lsb_bound=3,
    exact_with_stock=False, error_kind="mlp", features=_features,
    twin="tflm_vit.twins.mlp")
