"""The training recipe (augmentation, batches, losses, schedule), the teacher's cache,
and training one subnet on its own to convergence, resumably."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tflm_vit.errors import ConfigError, DataError
from tflm_vit.recipe import (Augmentation, Recipe, augment, epoch_batches, schedule,
                             student_loss)


def test_translation_is_a_crop_of_the_padded_image_and_flips_mirror_it():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 2)).astype(np.float32)
    aug = Augmentation(translate=2, fill=-1.0)
    y = augment(tf.constant(x), aug, tf.constant([3, 7])).numpy()
    padded = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], constant_values=-1.0)
    offsets = set()
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if np.array_equal(y[i], padded[i, dy:dy + 8, dx:dx + 8])]
        assert found, i  # every output is the padded image cropped at some offset
        offsets.add(found[0])
    assert len(offsets) > 10  # offsets vary across the batch
    again = augment(tf.constant(x), aug, tf.constant([3, 7])).numpy()
    assert np.array_equal(y, again)  # stateless: the same key, the same batch
    other = augment(tf.constant(x), aug, tf.constant([3, 8])).numpy()
    assert not np.array_equal(y, other)
    flipped = augment(tf.constant(x), Augmentation(hflip=True), tf.constant([0, 0])).numpy()
    same = [np.array_equal(f, a) for f, a in zip(flipped, x)]
    mirrored = [np.array_equal(f, a[:, ::-1]) for f, a in zip(flipped, x)]
    assert all(s or m for s, m in zip(same, mirrored)) and 10 < sum(mirrored) < 54
    assert augment(tf.constant(x), Augmentation(), tf.constant([0, 0])) is not None
    with pytest.raises(ConfigError, match="translate"):
        Augmentation(translate=-1)


def test_epoch_batches_are_a_seeded_permutation():
    a = epoch_batches(100, 16, seed=1, epoch=2)
    assert a.shape == (6, 16) and len(set(a.ravel())) == 96
    assert np.array_equal(a, epoch_batches(100, 16, 1, 2))
    assert not np.array_equal(a, epoch_batches(100, 16, 1, 3))
    with pytest.raises(ConfigError, match="batch_size: 128 is more than the 100"):
        epoch_batches(100, 128, 0, 0)


def test_student_loss_mixes_smoothed_labels_and_the_teacher():
    logits = tf.constant([[2.0, 0.0, -1.0]])
    y = tf.constant([0])
    t = tf.constant([[0.2, 0.7, 0.1]])
    logp = tf.nn.log_softmax(logits).numpy()[0]
    smooth = np.array([0.9 + 0.1 / 3, 0.1 / 3, 0.1 / 3])
    r = Recipe(label_smoothing=0.1, distillation=0.25)
    expected = 0.75 * -(smooth * logp).sum() + 0.25 * -(np.array([0.2, 0.7, 0.1]) * logp).sum()
    assert float(student_loss(r, y, logits, t)[0]) == pytest.approx(expected, rel=1e-5)
    plain = Recipe(label_smoothing=0.0, distillation=0.0)
    assert float(student_loss(plain, y, logits, t)[0]) == pytest.approx(-logp[0], rel=1e-5)


def test_schedule_warms_up_then_decays_to_zero():
    lr = schedule(Recipe(learning_rate=1e-3, warmup=0.1), 100)
    values = [float(lr(s)) for s in range(101)]
    assert values[0] == 0.0 and values[10] == pytest.approx(1e-3)
    assert all(a <= b for a, b in zip(values[:10], values[1:11]))
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[100] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ConfigError, match="label_smoothing"):
        Recipe(label_smoothing=1.5)


def test_patience_waits_for_the_annealed_schedule():
    # A plateau at a high learning rate is not convergence: patience ends a training
    # only in its schedule's last quarter (the STM32F401 winner stopped at epoch 19 of
    # 100 at 0.855; trained on through its schedule it reached 0.898 on validation (500 s)).
    from tflm_vit.fit import stalled
    flat = [{"val_top1": 0.8}] + [{"val_top1": 0.7}] * 30
    assert stalled(flat, 5)  # no schedule given: patience alone
    assert not stalled(flat, 5, 100)  # epoch 31 of 100: still learning
    assert stalled(flat + [{"val_top1": 0.7}] * 44, 5, 100)  # epoch 75 of 100: annealed
    rising = [{"val_top1": 0.5 + i / 1000} for i in range(80)]
    assert not stalled(rising, 5, 100) and not stalled(flat, None, 100)


def test_datasets_carry_what_augmentation_they_allow(digits):
    from tflm_vit.data import FASHION_MNIST_AUGMENTATION
    assert digits.augmentation.translate > 0 and not digits.augmentation.hflip
    assert FASHION_MNIST_AUGMENTATION.hflip  # a mirrored garment is the same garment


@pytest.fixture(scope="module")
def split(digits):
    from tflm_vit.data import validation_split
    return validation_split(digits, 0.1, 0)


def test_teacher_is_trained_once_cached_and_refused_for_other_data(split, tmp_path,
                                                                   monkeypatch):
    from tflm_vit import teacher as t
    monkeypatch.setenv("TFLM_VIT_CACHE", str(tmp_path))
    train, val = split
    spec = t.TeacherSpec(width=4, epochs=1)
    lines = []
    first = t.teacher_for(train, val.x_test, val.y_test, spec, say=lines.append)
    assert any("training the CNN teacher" in line for line in lines)
    assert first.probs.shape == (len(train.y_train), 10)
    assert np.allclose(first.probs.sum(-1), 1.0, atol=1e-2)
    lines.clear()
    again = t.teacher_for(train, val.x_test, val.y_test, spec, say=lines.append)
    assert not lines and again.path == first.path  # from the cache, nothing trained
    assert np.array_equal(again.probs, first.probs)
    other = dataclasses.replace(train, name="other", x_train=train.x_train[::-1].copy())
    with pytest.raises(DataError, match="was trained on 'digits'.*not on this training set "
                                        "of 'other'"):
        t.teacher_for(other, val.x_test, val.y_test, spec, path=first.path)


def _tiny_space():
    from tflm_vit.space import SearchSpace
    return SearchSpace([16], [4], [16], [1], [1], [1.0], stem=[0, 4])


def test_subnet_training_resumes_to_the_same_weights(split, tmp_path):
    """Interrupted after its first epoch and started again, a final training ends with
    the weights an uninterrupted one ends with; its weights export and run in TFLM."""
    from tflm_vit import pipeline
    from tflm_vit.config import SubnetConfig
    from tflm_vit.subnet_training import TrainedSubnet, train_subnet
    from tflm_vit.supernet.model import seeded_supernet
    train, val = split
    config = SubnetConfig(16, 4, 16, 1, 1, 1.0, stem=4)
    recipe = Recipe(batch_size=64)
    whole, fit = train_subnet(seeded_supernet(_tiny_space()), config, train, val, 2, recipe,
                              checkpoint_dir=str(tmp_path / "a"))
    assert fit.epochs == 2 and fit.best_epoch in (1, 2)

    def stop_after_first(text):
        if "epoch 1/2" in text:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train_subnet(seeded_supernet(_tiny_space()), config, train, val, 2, recipe,
                     checkpoint_dir=str(tmp_path / "b"), say=stop_after_first)
    resumed, fit2 = train_subnet(seeded_supernet(_tiny_space()), config, train, val, 2,
                                 recipe, checkpoint_dir=str(tmp_path / "b"))
    assert [h["val_top1"] for h in fit2.history] == [h["val_top1"] for h in fit.history]
    for k, v in whole.weights.items():
        np.testing.assert_array_equal(v, resumed.weights[k], err_msg=k)
    with pytest.raises(ConfigError, match="other settings"):
        train_subnet(seeded_supernet(_tiny_space()), config, train, val, 3, recipe,
                     checkpoint_dir=str(tmp_path / "b"))
    whole.save(str(tmp_path / "w.npz"))
    loaded = TrainedSubnet.load(str(tmp_path / "w.npz"))
    assert loaded.config == config
    d = pipeline.deploy(loaded, config, train.x_train[:20], verify_images=val.x_test)
    acc = pipeline.measure(d, loaded, val.x_test[:40], val.y_test[:40], run_stock=False)
    assert acc.agreement >= 0.9  # int8 in TFLM follows the float model
    with pytest.raises(ConfigError, match="epochs"):
        train_subnet(loaded, config, train, val, 0, recipe)


def test_quantisation_aware_training_runs_at_the_int8_weights(split):
    """Each channel of a kernel at the int8 values the export gives it (at most 255
    levels, the channel's largest weight kept); a quantisation-aware fit trains float
    masters through them and ends with the masters."""
    import keras

    from tflm_vit.fit import fit, int8_weights
    w = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    q = int8_weights(tf.constant(w)).numpy()
    for c in range(5):
        scale = np.abs(w[:, c]).max() / 127
        assert np.allclose(q[:, c] / scale, np.round(q[:, c] / scale), atol=1e-4)
        assert np.abs(q[:, c] - w[:, c]).max() <= scale / 2 + 1e-6
    train, val = split
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(train.x_train.shape[1:]), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    before = model.get_weights()[0].copy()
    result = fit(model, train.x_train, train.y_train, val.x_test, val.y_test, 1,
                 Recipe(batch_size=64), quantisation_aware=True)
    after = model.get_weights()[0]
    assert result.epochs == 1 and not np.array_equal(before, after)
    assert not np.array_equal(after, int8_weights(tf.constant(after)).numpy())  # masters
