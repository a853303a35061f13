"""The default planner on ViTs far outside the reference space: tokens from 16 to 1,600,
depth 1-12, head counts that are not powers of two, low-rank MLPs, MLP ratios up to 4,
the image overwritten or kept. On every one the plan passes the checker, never goes
below the lower bound, and is within 1 % of CP-SAT's optimum wherever CP-SAT proves one
(at the bound the plan is optimal without asking CP-SAT)."""

import numpy as np
import pytest

from tflm_vit.converters.convert import convert
from tflm_vit.export import export_tflite
from tflm_vit.memory import check_plan
from tflm_vit.memory.bound import head_lower_bound
from tflm_vit.memory.planner import plan, plan_exact
from tflm_vit.space import SearchSpace
from tflm_vit.supernet import ViTSupernet, trained_shaped
from tflm_vit.tflite_model import parse_model

WIDE = SearchSpace(resolution=(16, 32, 48, 80), patch_size=(2, 4, 8),
                   embed_dim=(24, 30, 48, 60), depth=tuple(range(1, 13)),
                   num_heads=(1, 2, 3, 4, 5, 6), mlp_ratio=(1.0, 2.0, 3.0, 4.0),
                   rank_ratio=(0.25, 0.5, 0.75, 1.0))
# 16 draws span the space's extremes (16 and 1,600 tokens, depth 1 and 12, 3, 5 and 6
# heads, rank 0.25, MLP ratio 4); each export costs seconds of every CI run.
COUNT = 16


@pytest.fixture(scope="module")
def wide_models():
    net = trained_shaped(ViTSupernet(WIDE))
    rng = np.random.default_rng(1234)
    out = []
    for i in range(COUNT):
        config = WIDE.sample(rng)
        rep = rng.uniform(-1, 1, (2, config.resolution, config.resolution, 3)).astype(np.float32)
        model = convert(export_tflite(net, config, rep), verify=False,
                        overwrite_image=bool(i % 2)).model
        out.append((config, parse_model(model)))
    return out


def test_the_sample_is_wide(wide_models):
    configs = [c for c, _ in wide_models]
    tokens = [c.num_tokens for c in configs]
    assert min(tokens) <= 16 and max(tokens) >= 400
    assert min(c.depth for c in configs) <= 2 and max(c.depth for c in configs) >= 10
    assert any(h not in (1, 2, 4) for c in configs for h in c.num_heads)
    assert any(c.rank_ratio < 1 for c in configs) and any(max(c.mlp_ratio) == 4 for c in configs)


def test_default_planner_is_within_one_percent_of_the_optimum(wide_models):
    report = []
    for config, info in wide_models:
        found = plan(info)
        check_plan(info, found.offsets)
        bound = head_lower_bound(info)
        assert found.head >= bound, f"{config.short()}: plan {found.head} below the bound {bound}"
        if found.head == bound:
            continue
        exact = plan_exact(info, time_limit_s=60)
        report.append((config.short(), found.head, exact.head, exact.exact))
        if exact.exact == "optimal":
            assert found.head <= 1.01 * exact.head, report[-1]
    print(f"{len(report)} of {len(wide_models)} above the bound: {report}")
