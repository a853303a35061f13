import json

import numpy as np
import pytest

from tflm_vit.config import SubnetConfig
from tflm_vit.errors import ConfigError
from tflm_vit.space import DEFAULT_SPACE, REFERENCE_CONFIGS, REFERENCE_SPACE, SearchSpace


def test_scalar_heads_and_mlp_broadcast_per_layer():
    c = SubnetConfig(32, 4, 64, 3, 2, 2.0)
    assert c.num_heads == (2, 2, 2) and c.mlp_ratio == (2.0, 2.0, 2.0)
    assert c.num_tokens == 64 and c.hidden_dim(0) == 128 and c.mlp_rank(0) is None


def test_low_rank_is_ratio_of_min_dim():
    c = SubnetConfig(32, 4, 64, 1, 2, 2.0, rank_ratio=0.5)
    assert c.mlp_rank(0) == 32  # 0.5 * min(64, 128)


@pytest.mark.parametrize("kwargs, field", [
    (dict(resolution=30), "patch_size"),
    (dict(embed_dim=0), "embed_dim"),
    (dict(num_heads=3), "num_heads[0]"),
    (dict(num_heads=[2]), "num_heads"),
    (dict(mlp_ratio=-1.0), "mlp_ratio[0]"),
    (dict(rank_ratio=1.5), "rank_ratio"),
    (dict(depth="two"), "depth"),
    (dict(rank_ratio="x"), "rank_ratio"),
])
def test_invalid_config_names_the_field(kwargs, field):
    base = dict(resolution=32, patch_size=4, embed_dim=64, depth=2, num_heads=2, mlp_ratio=2.0)
    with pytest.raises(ConfigError) as e:
        SubnetConfig(**{**base, **kwargs})
    assert e.value.field == field
    assert str(e.value).startswith(field)


def test_json_round_trip_and_unknown_field():
    c = SubnetConfig(32, 4, 64, 2, [2, 4], [1.0, 2.0], 0.75)
    assert SubnetConfig.from_json(c.to_json()) == c
    with pytest.raises(ConfigError, match="heads"):
        SubnetConfig.from_dict({**c.to_dict(), "heads": 2})
    with pytest.raises(ConfigError, match="embed_dim: is missing"):
        SubnetConfig.from_dict({k: v for k, v in c.to_dict().items() if k != "embed_dim"})
    with pytest.raises(ConfigError, match="not valid JSON"):
        SubnetConfig.from_json("{nope")


def test_space_samples_and_mutations_stay_inside():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(300):
        c = DEFAULT_SPACE.sample(rng)
        DEFAULT_SPACE.validate(c)
        m = DEFAULT_SPACE.mutate(c, rng)
        DEFAULT_SPACE.validate(m)
        seen.add((c.resolution, c.patch_size, c.embed_dim, c.depth, c.rank_ratio))
    assert len(seen) > 50  # sampling really covers the space


def test_extremes_and_bounds():
    big, small = DEFAULT_SPACE.largest(), DEFAULT_SPACE.smallest()
    assert big.embed_dim == 64 and big.depth == 3 and big.num_tokens == 64
    assert small.embed_dim == 32 and small.depth == 1 and small.num_tokens == 4
    assert DEFAULT_SPACE.bounds()["embed_dim"] == (32, 64)


def test_reference_configs_are_in_reference_space():
    for c in REFERENCE_CONFIGS.values():
        REFERENCE_SPACE.validate(c)
    assert REFERENCE_SPACE.max_grid == 15


def test_validate_names_field_outside_space():
    with pytest.raises(ConfigError) as e:
        DEFAULT_SPACE.validate(SubnetConfig(32, 4, 40, 1, 2, 1.0))
    assert e.value.field == "embed_dim"
    with pytest.raises(ConfigError) as e:
        DEFAULT_SPACE.validate(SubnetConfig(32, 4, 64, 1, 2, 3.0))
    assert e.value.field == "mlp_ratio[0]"


def test_bad_space_is_clear():
    with pytest.raises(ConfigError, match="num_heads"):
        SearchSpace(resolution=[32], patch_size=[4], embed_dim=[30], depth=[1],
                    num_heads=[4], mlp_ratio=[1.0])
    with pytest.raises(ConfigError, match="patch_size"):
        SearchSpace(resolution=[30], patch_size=[4], embed_dim=[32], depth=[1],
                    num_heads=[4], mlp_ratio=[1.0])
    s = SearchSpace.from_dict(json.loads(DEFAULT_SPACE.to_json()))
    assert s == DEFAULT_SPACE
