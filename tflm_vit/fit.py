"""`fit`: one static-shape Keras model trained with the recipe (tflm_vit/recipe.py) to
convergence, resumable. Every model that trains on its own here goes through it: a
search's winner (subnet_training.py), the teacher (teacher.py), and the baselines the
search is held to (the CNN, the MLP and the linear classifier), so that their accuracies
compare.

Steps are XLA-compiled (recipe.jit_compile); augmentation runs inside them. After every
epoch the validation accuracy is measured, the best epoch's weights kept, and (with a
checkpoint folder) the state saved atomically: a run interrupted and started again
continues at the next epoch and ends with the weights an uninterrupted run ends with.
Training stops when the epochs run out, or, in the schedule's last quarter (ANNEALED),
when the validation accuracy has not improved for `patience` epochs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from tflm_vit import interrupt
from tflm_vit.errors import ConfigError
from tflm_vit.recipe import Augmentation, Recipe


@dataclasses.dataclass
class FitResult:
    """What a training did, for reports."""
    epochs: int  # run
    best_epoch: int
    best_val_top1: float
    seconds: float  # training and validation, over every attempt
    history: list  # per epoch: {"epoch", "loss", "val_top1", "seconds"}
    stopped_early: bool

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _state_path(folder: str) -> str:
    return os.path.join(folder, "fit_state.npz")


def _save_state(folder, model, opt, best, history, settings) -> None:
    os.makedirs(folder, exist_ok=True)
    arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    arrays.update({f"o{i}": np.asarray(v) for i, v in enumerate(opt.variables)})
    arrays.update({f"b{i}": w for i, w in enumerate(best)})
    meta = {"history": history, "settings": settings}
    tmp = _state_path(folder) + ".tmp.npz"
    np.savez(tmp, __meta__=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, _state_path(folder))  # an interruption never leaves half a state


def _load_state(folder, model, opt, settings):
    """(best weights, history) from the folder's state, or None; a state written with
    other settings is refused."""
    path = _state_path(folder)
    if not os.path.exists(path):
        return None
    with np.load(path) as f:
        meta = json.loads(str(f["__meta__"]))
        if meta["settings"] != settings:
            raise ConfigError("checkpoint", f"{path} holds a training with other settings; "
                              "use another folder (or remove it to start over)")
        model.set_weights([f[f"w{i}"] for i in range(len(model.weights))])
        for i, v in enumerate(opt.variables):
            v.assign(f[f"o{i}"])
        best = [f[f"b{i}"] for i in range(len(model.weights))]
    return best, meta["history"]


# Patience counts only in the schedule's last quarter, where the cosine learning rate is
# below 15 % of its peak: earlier, a plateau is the high learning rate's noise, not
# convergence. (The STM32F401 search's winner, stopped by patience 5 at epoch 19 of 100,
# shipped 0.855 test top-1; trained through a 60-epoch schedule it reached 0.898 on
# validation, the same architecture from scratch.)
ANNEALED = 0.75


def stalled(history: list, patience: int | None, epochs: int | None = None) -> bool:
    """No validation improvement in the last `patience` epochs, once the schedule of
    `epochs` epochs is annealed (its last quarter)."""
    if not patience or len(history) <= patience:
        return False
    if epochs is not None and len(history) < ANNEALED * epochs:
        return False
    best = max(h["val_top1"] for h in history[:-patience])
    return max(h["val_top1"] for h in history[-patience:]) <= best


def int8_weights(w):
    """A kernel at the values the int8 export gives it: symmetric, per output channel
    (the last axis), 127 steps either side, as TFLite quantises weights."""
    import tensorflow as tf
    axes = list(range(len(w.shape) - 1))
    scale = tf.maximum(tf.reduce_max(tf.abs(w), axis=axes), 1e-12) / 127.0
    return tf.round(w / scale) * scale


def fit(model, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
        epochs: int, recipe: Recipe, augmentation: Augmentation | None = None,
        teacher_probs: np.ndarray | None = None, patience: int | None = None,
        checkpoint_dir: str | None = None, seed: int = 0, say=None, name: str = "model",
        identity: dict | None = None, quantisation_aware: bool = False) -> FitResult:
    """Train `model` (logits out) on (x, y); its weights end as those of its best
    validation epoch. `teacher_probs[i]`: soft targets for x[i] (with
    recipe.distillation > 0). `identity`: what else makes a checkpoint this run's (it
    must match to resume). `quantisation_aware`: every step runs with the kernels at
    their int8 values and the gradient updates float master copies (straight through);
    the model ends with the masters, which the export quantises to the same values."""
    import tensorflow as tf

    from tflm_vit.recipe import augment, epoch_batches, optimizer, student_loss
    say = say or (lambda text: None)
    if int(epochs) <= 0:
        raise ConfigError("epochs", f"must be positive, got {epochs}")
    if teacher_probs is not None and len(teacher_probs) != len(y):
        raise ConfigError("teacher", f"holds {len(teacher_probs)} soft targets, the "
                          f"training set has {len(y)} images")
    y = np.asarray(y, np.int32)
    steps_per_epoch = len(y) // recipe.batch_size
    epoch_batches(len(y), recipe.batch_size, seed, 0)  # a batch larger than the data: error
    opt = optimizer(recipe, epochs * steps_per_epoch)
    kernels = [v for v in model.trainable_variables
               if quantisation_aware and len(v.shape) >= 2]
    masters = [tf.Variable(v, trainable=False, name=f"master_{i}")
               for i, v in enumerate(kernels)]
    others = [v for v in model.trainable_variables if all(v is not k for k in kernels)]
    targets = masters + others  # what the optimizer updates
    opt.build(targets)
    aug = augmentation if recipe.augment and augmentation and augmentation.active else None
    probs = teacher_probs if recipe.distillation > 0 else None
    classes = int(model.outputs[0].shape[-1])

    @tf.function(jit_compile=recipe.jit_compile)
    def step(xb, yb, tb, key):
        if aug is not None:
            xb = augment(xb, aug, key)
        for k, m in zip(kernels, masters):
            k.assign(int8_weights(m))
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(student_loss(recipe, yb, model(xb, training=True),
                                               tb if probs is not None else None))
        grads = tape.gradient(loss, kernels + others)  # d/d(int8 kernel) -> its master
        opt.apply_gradients(zip(grads, targets))
        return loss

    def float_weights():
        for k, m in zip(kernels, masters):
            k.assign(m)

    @tf.function(jit_compile=recipe.jit_compile)
    def predict(xb):
        return tf.argmax(model(xb, training=False), -1, output_type=tf.int32)

    def val_top1() -> float:
        hits = sum(int(np.sum(predict(tf.constant(x_val[i:i + 500])).numpy()
                              == y_val[i:i + 500])) for i in range(0, len(x_val), 500))
        return hits / len(x_val)

    settings = {"epochs": int(epochs), "recipe": recipe.to_dict(), "seed": seed,
                "train_images": len(y), "augmentation": None if aug is None
                else dataclasses.asdict(aug), "quantisation_aware": quantisation_aware,
                **(identity or {})}
    state = _load_state(checkpoint_dir, model, opt, settings) if checkpoint_dir else None
    best, history = state or ([np.asarray(w) for w in model.get_weights()], [])
    for k, m in zip(kernels, masters):  # the saved model holds the float masters
        m.assign(k)
    best_val = max((h["val_top1"] for h in history), default=-1.0)
    no_targets = tf.zeros((recipe.batch_size, classes))
    for epoch in range(len(history), epochs):
        if stalled(history, patience, epochs):
            break
        t0, losses = time.monotonic(), []
        for i, idx in enumerate(epoch_batches(len(y), recipe.batch_size, seed, epoch)):
            interrupt.check()
            tb = tf.constant(probs[idx]) if probs is not None else no_targets
            losses.append(step(tf.constant(x[idx]), tf.constant(y[idx]), tb,
                               tf.constant([seed, epoch * steps_per_epoch + i], tf.int32)))
        if kernels:  # validate as the export will run: the int8 values of the masters
            for k, m in zip(kernels, masters):
                k.assign(int8_weights(m))
        acc = val_top1()
        float_weights()
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "val_top1": acc,
                        "seconds": round(time.monotonic() - t0, 1)})
        if acc > best_val:
            best_val, best = acc, [np.asarray(w) for w in model.get_weights()]
        if checkpoint_dir:
            _save_state(checkpoint_dir, model, opt, best, history, settings)
        per_epoch = sum(h["seconds"] for h in history) / len(history)
        say(f"{name}: epoch {epoch + 1}/{epochs}, loss {history[-1]['loss']:.3f}, "
            f"val top-1 {acc:.4f} (best {best_val:.4f}), "
            f"{per_epoch * (epochs - epoch - 1) / 60:.1f} min to go")
    model.set_weights(best)
    best_epoch = max(history, key=lambda h: h["val_top1"])["epoch"] if history else 0
    return FitResult(len(history), best_epoch, best_val,
                     round(sum(h["seconds"] for h in history), 1), history,
                     len(history) < epochs)
