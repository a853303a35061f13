import os

import numpy as np
import pytest
import tensorflow as tf

from tflm_vit.errors import ConfigError
from tflm_vit.space import SearchSpace
from tflm_vit.recipe import Recipe
from tflm_vit.train import (SUPERNET_RECIPE, TrainConfig, load_supernet, sandwich_configs,
                             train_supernet)

TINY = SearchSpace(resolution=[16], patch_size=[4, 8], embed_dim=[16, 32], depth=[1, 2],
                   num_heads=[1, 2], mlp_ratio=[1.0, 2.0], rank_ratio=[0.5, 1.0])


def _batch(n: int, **kw) -> Recipe:
    import dataclasses
    return dataclasses.replace(SUPERNET_RECIPE, batch_size=n, **kw)


def _small(digits, n=128):
    import dataclasses
    return dataclasses.replace(digits, x_train=digits.x_train[:n], y_train=digits.y_train[:n])


def test_sandwich_has_largest_smallest_and_random():
    enc = sandwich_configs(TINY, np.random.default_rng(0), 2)
    assert enc["dim"].tolist()[:2] == [32, 16] and len(enc["dim"]) == 4


def test_mirrored_strategy_train_checkpoint_and_resume(digits, tmp_path):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    ckpt = str(tmp_path / "ckpt")
    data = _small(digits)
    cfg = TrainConfig(steps=6, recipe=_batch(8), log_every=2, checkpoint_dir=ckpt,
                      checkpoint_every=3)
    net, hist = train_supernet(TINY, data, cfg, strategy=strategy, progress=False)
    assert [h["step"] for h in hist] == [2, 4, 6]
    assert all(np.isfinite(h["loss"]) for h in hist)
    assert tf.train.latest_checkpoint(ckpt).endswith("-6")
    # Resume: a longer run starts at step 6, not 0.
    cfg2 = TrainConfig(steps=8, recipe=_batch(8), log_every=2, checkpoint_dir=ckpt)
    net, hist2 = train_supernet(TINY, data, cfg2, strategy=strategy, progress=False)
    assert [h["step"] for h in hist2] == [8]
    # The checkpoint reloads into a supernet with the same weights.
    net2 = load_supernet(ckpt)
    # Every variable, the blocks' included, comes back exactly.
    assert len(net2.variables) == len(net.variables)
    for a, b in zip(net.variables, net2.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_training_reduces_loss(digits):
    # The training loop itself, without the recipe's regularisers: label smoothing puts a
    # floor under the loss and augmentation makes each batch harder, and with both the
    # sandwich loss of random subnets fell only 19 % in 240 steps on one CI run (flaky at
    # the 20 % bar). Without them the same steps leave a wide margin.
    _, hist = train_supernet(TINY, _small(digits, 512),
                             TrainConfig(steps=240, log_every=10,
                                         recipe=_batch(32, augment=False, label_smoothing=0.0)),
                             progress=False)
    first = np.mean([h["loss"] for h in hist[:2]])
    last = np.mean([h["loss"] for h in hist[-4:]])
    print("sandwich loss", first, "->", last)
    assert last < 0.7 * first, (first, last)


def test_resume_with_another_space_is_refused(digits, tmp_path):
    ckpt = str(tmp_path / "c")
    train_supernet(TINY, _small(digits, 32), TrainConfig(steps=1, recipe=_batch(8),
                                                          checkpoint_dir=ckpt), progress=False)
    other = SearchSpace.from_dict({**TINY.to_dict(), "embed_dim": [16]})
    with pytest.raises(ConfigError, match="space"):
        train_supernet(other, _small(digits, 32), TrainConfig(steps=2, recipe=_batch(8),
                                                               checkpoint_dir=ckpt),
                       progress=False)


def test_bad_batch_split_is_clear(digits):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with pytest.raises(ConfigError, match="batch_size"):
        train_supernet(TINY, _small(digits, 32), TrainConfig(steps=1, recipe=_batch(7)),
                       strategy=strategy, progress=False)


def test_missing_checkpoint_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="space.json"):
        load_supernet(str(tmp_path))
    assert not os.listdir(tmp_path)
