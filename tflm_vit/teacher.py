"""The teacher: a small CNN trained once per training set and cached, whose soft
predictions on the training images the supernet's largest subnet and every final
training learn from (knowledge distillation, as DeiT does for ViTs on small data).

The soft targets are computed once, on the un-augmented training images, and stored
with the teacher ("offline" distillation): a step then costs no teacher forward pass,
and the students' steps stay XLA-compilable. The cache is keyed on a fingerprint of the
exact training images and labels (a search's training split differs per seed, and the
teacher must never have seen its validation images), so a teacher is only ever reused
for the data it was trained on; one given explicitly for other data is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from tflm_vit.data import Dataset
from tflm_vit.errors import DataError
from tflm_vit.recipe import Recipe

TEACHER_FORMAT = 1  # bump when the architecture or recipe below changes


@dataclasses.dataclass(frozen=True)
class TeacherSpec:
    """The CNN (3x3 convolutions with batch norm and ReLU: width, 2 x width stride 2,
    2 x width, 4 x width stride 2, 4 x width, global average pooling, dropout, dense)
    and how long it trains."""
    width: int = 16
    epochs: int = 15
    recipe: Recipe = Recipe(learning_rate=2e-3, weight_decay=5e-4, warmup=0.05,
                            distillation=0.0)

    def to_dict(self) -> dict:
        return {"format": TEACHER_FORMAT, "width": self.width, "epochs": self.epochs,
                "recipe": self.recipe.to_dict()}


@dataclasses.dataclass
class Teacher:
    path: str
    dataset: str
    fingerprint: str
    probs: np.ndarray  # (training images, classes) float32: soft targets, row i for image i
    held_out_top1: float  # on the held-out images it was checked on
    seconds: float  # training time

    def describe(self) -> str:
        return (f"CNN teacher ({self.held_out_top1:.4f} held-out top-1, trained in "
                f"{self.seconds:.0f} s; {self.path})")


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """Of the exact training images and labels."""
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(x, np.float32), np.ascontiguousarray(y, np.int64)):
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:20]


def cache_root() -> str:
    """$TFLM_VIT_CACHE, else ~/.cache/tflm-vit."""
    return os.environ.get("TFLM_VIT_CACHE") or os.path.join(os.path.expanduser("~"),
                                                            ".cache", "tflm-vit")


def build(spec: TeacherSpec, shape: tuple, classes: int):
    import keras
    from keras import layers

    def conv(x, filters, stride=1):
        x = layers.Conv2D(filters, 3, stride, padding="same", use_bias=False)(x)
        return layers.ReLU()(layers.BatchNormalization()(x))

    w = spec.width
    inp = keras.Input(shape)
    x = conv(inp, w)
    x = conv(conv(x, 2 * w, 2), 2 * w)
    x = conv(conv(x, 4 * w, 2), 4 * w)
    x = layers.Dropout(0.2)(layers.GlobalAveragePooling2D()(x))
    return keras.Model(inp, layers.Dense(classes)(x), name="teacher")


def _load(path: str, fp: str | None, train: Dataset) -> Teacher:
    try:
        with open(os.path.join(path, "meta.json")) as f:
            meta = json.load(f)
        probs = np.load(os.path.join(path, "probs.npy"))
    except (OSError, ValueError) as e:
        raise DataError(f"teacher {path}: unreadable ({e})") from None
    if fp is not None and meta.get("fingerprint") != fp:
        raise DataError(f"teacher {path} was trained on '{meta.get('dataset')}' (training "
                        f"set {meta.get('fingerprint')}), not on this training set of "
                        f"'{train.name}' ({fp}): its soft targets would be another data's")
    if probs.shape != (len(train.y_train), train.num_classes):
        raise DataError(f"teacher {path}: soft targets of shape {probs.shape}, the training "
                        f"set needs ({len(train.y_train)}, {train.num_classes})")
    return Teacher(path, meta["dataset"], meta["fingerprint"], probs.astype(np.float32),
                   meta["held_out_top1"], meta["seconds"])


def train_teacher(spec: TeacherSpec, train: Dataset, held_out_x, held_out_y, seed: int = 0,
                  say=None):
    """(model, probs on the training images, held-out top-1, seconds)."""
    import keras
    import tensorflow as tf

    from tflm_vit.fit import fit
    keras.utils.set_random_seed(seed)
    model = build(spec, train.x_train.shape[1:], train.num_classes)
    result = fit(model, train.x_train, train.y_train, held_out_x, held_out_y, spec.epochs,
                 spec.recipe, train.augmentation, seed=seed, say=say, name="teacher")
    probs = np.concatenate([tf.nn.softmax(model(train.x_train[i:i + 1000], training=False))
                            .numpy() for i in range(0, len(train.x_train), 1000)])
    return model, probs.astype(np.float32), result.best_val_top1, result.seconds


def teacher_for(train: Dataset, held_out_x, held_out_y, spec: TeacherSpec = TeacherSpec(),
                path: str | None = None, say=None) -> Teacher:
    """The teacher of this training set: loaded from `path` (refused when it was trained
    on other data), or from the cache, or trained now and cached (minutes)."""
    say = say or (lambda text: None)
    fp = fingerprint(train.x_train, train.y_train)
    if path is not None:
        return _load(path, fp, train)
    key = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in train.name)[:40]
    folder = os.path.join(cache_root(), "teachers", f"{safe}-{fp}-{key}")
    if os.path.exists(os.path.join(folder, "meta.json")):
        return _load(folder, fp, train)
    say(f"training the CNN teacher for '{train.name}' ({spec.epochs} epochs; cached in "
        f"{folder})")
    model, probs, top1, seconds = train_teacher(spec, train, held_out_x, held_out_y, 0, say)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-", dir=os.path.dirname(folder))
    try:
        np.save(os.path.join(tmp, "probs.npy"), probs.astype(np.float16))
        model.save_weights(os.path.join(tmp, "teacher.weights.h5"))
        with open(os.path.join(tmp, "meta.json"), "w") as f:
            json.dump({"dataset": train.name, "fingerprint": fp, "spec": spec.to_dict(),
                       "held_out_top1": top1, "seconds": round(seconds, 1)}, f,
                      indent=1)
        os.replace(tmp, folder)  # all or nothing: an interrupted save leaves no teacher
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.exists(os.path.join(folder, "meta.json")):
            raise
    say(f"teacher: held-out top-1 {top1:.4f} in {seconds:.0f} s")
    return _load(folder, fp, train)
