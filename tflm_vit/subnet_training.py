"""One subnet trained on its own to convergence: what a search ships.

The winner of a search inherits its weights from the supernet and trains on as a static
Keras model (the very model the export builds, with a free batch size), so its steps are
XLA-compiled, with the full recipe (tflm_vit/recipe.py) and the teacher's soft targets,
until the epochs run out or, once the learning rate has annealed (the schedule's last
quarter, fit.ANNEALED), the validation accuracy has not improved for `patience` epochs;
the weights of its best validation epoch are kept. A checkpoint after every epoch
makes it resumable: a run interrupted and started again continues at the next epoch and
ends with the same weights.

`TrainedSubnet` holds the result and answers what the pipeline asks of a supernet
(`space`, `subnet_weights`, `predict_subnet`), so export, convert, plan and measure take
it as they take a supernet.
"""

from __future__ import annotations

import json
import os

import numpy as np

from tflm_vit.config import SubnetConfig
from tflm_vit.data import Dataset
from tflm_vit.errors import ConfigError
from tflm_vit.fit import FitResult, fit
from tflm_vit.recipe import Recipe
from tflm_vit.space import SearchSpace


class TrainedSubnet:
    """The weights of one subnet of `space`, trained on their own."""

    def __init__(self, space: SearchSpace, config: SubnetConfig, weights: dict):
        self.space, self.config, self.weights = space, space.validate(config), weights
        self._model = None

    def subnet_weights(self, config: SubnetConfig) -> dict:
        if config != self.config:
            raise ConfigError("config", f"these weights are {self.config.short()}'s, not "
                              f"{config.short()}'s")
        return self.weights

    def float_model(self):
        from tflm_vit.supernet.subnet import build_subnet_model
        if self._model is None:
            self._model = build_subnet_model(self.config, self.weights,
                                             self.space.in_channels, batch_size=None)
        return self._model

    def predict_subnet(self, images, config: SubnetConfig, batch_size=256) -> np.ndarray:
        self.subnet_weights(config)
        model = self.float_model()
        return np.concatenate([np.asarray(model(images[i:i + batch_size], training=False))
                               for i in range(0, len(images), batch_size)])

    def save(self, path: str) -> None:
        tmp = path + ".tmp.npz"
        np.savez(tmp, __config__=np.array(self.config.to_json()),
                 __space__=np.array(self.space.to_json()), **self.weights)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> "TrainedSubnet":
        with np.load(path) as f:
            space = SearchSpace.from_dict(json.loads(str(f["__space__"])))
            config = SubnetConfig.from_json(str(f["__config__"]))
            weights = {k: f[k] for k in f.files if not k.startswith("__")}
        return cls(space, config, weights)


def epochs_within(model, x: np.ndarray, x_val: np.ndarray, recipe: Recipe, seconds: float,
                  most: int) -> int:
    """How many epochs of `model` on x (plus scoring x_val each epoch) fit in `seconds`,
    at most `most`, at least 1: timed on a few compiled training steps (gradients only,
    no update) of the recipe's batch size."""
    import time

    import tensorflow as tf
    xb = tf.constant(x[:recipe.batch_size])

    @tf.function(jit_compile=recipe.jit_compile)
    def probe(xb):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(xb, training=True)))
        return tape.gradient(loss, model.trainable_variables)
    probe(xb)  # compile
    t0 = time.monotonic()
    for _ in range(5):
        tf.nest.map_structure(lambda g: g.numpy(), probe(xb))
    per_step = (time.monotonic() - t0) / 5
    # an optimizer update and the scoring add about a fifth to the gradient's time
    per_epoch = 1.2 * per_step * (len(x) // recipe.batch_size
                                  + len(x_val) / (3 * recipe.batch_size))
    return int(max(1, min(most, seconds // per_epoch)))


def train_subnet(source, config: SubnetConfig, train: Dataset, val: Dataset,
                 epochs: int, recipe: Recipe = Recipe(), teacher=None, patience: int | None = 5,
                 checkpoint_dir: str | None = None, seed: int = 0, say=None,
                 quantisation_aware: bool = False, minutes: float | None = None
                 ) -> tuple[TrainedSubnet, FitResult]:
    """Train `config` on its own to convergence (tflm_vit/fit.py), starting from
    `source`'s weights for it (a supernet: the winner inherits them; or a TrainedSubnet).
    `val` is scored after every epoch (val.x_test / val.y_test); `teacher`
    (tflm_vit.teacher.Teacher of train's images) adds its soft targets.
    `quantisation_aware`: the kernels train at their int8 values (tflm_vit/fit.py).
    `minutes`: a time budget: `epochs` is then the most, and the epochs that fit in the
    budget on this machine (timed once, and kept in the checkpoint folder so a resumed
    run keeps its schedule) are trained."""
    import keras

    from tflm_vit.export import prepare_images
    from tflm_vit.supernet.subnet import build_subnet_model, subnet_model_weights
    space = source.space
    space.validate(config)
    keras.utils.set_random_seed(seed)
    model = build_subnet_model(config, source.subnet_weights(config), space.in_channels,
                               batch_size=None)
    x, x_val = (prepare_images(train.x_train, config.resolution),
                prepare_images(val.x_test, config.resolution))
    if minutes is not None:
        epochs = _planned_epochs(model, x, x_val, recipe, minutes, epochs, checkpoint_dir, say)
    result = fit(model, x, train.y_train, x_val, val.y_test, epochs, recipe,
                 train.augmentation, None if teacher is None else teacher.probs, patience,
                 checkpoint_dir, seed, say, config.short(),
                 {"config": json.loads(config.to_json()),
                  "teacher": None if teacher is None else teacher.fingerprint},
                 quantisation_aware)
    return TrainedSubnet(space, config, subnet_model_weights(model, config)), result


def _planned_epochs(model, x, x_val, recipe, minutes, most, folder, say) -> int:
    """The epochs of a time-budgeted training: timed once, then kept in `folder`."""
    path = os.path.join(folder, "epochs.json") if folder else None
    key = {"minutes": minutes, "most": int(most)}
    if path and os.path.exists(path):
        with open(path) as f:
            kept = json.load(f)
        if kept["budget"] == key:
            return kept["epochs"]
    epochs = epochs_within(model, x, x_val, recipe, minutes * 60, most)
    (say or (lambda text: None))(f"{epochs} epochs fit in {minutes:g} min here (at most {most})")
    if path:
        os.makedirs(folder, exist_ok=True)
        with open(path, "w") as f:
            json.dump({"budget": key, "epochs": epochs}, f)
    return epochs
