"""The training recipe every model here trains with: the supernet, each search's winner
and the baselines' winners alike, so that their accuracies compare.

Its pieces, each measured on Fashion-MNIST by `bench/recipe.py` (bench/results/recipe.md):
data augmentation (random translation by padding and cropping back, horizontal flips
where the data allows them: a per-dataset setting, `Dataset.augmentation`), label
smoothing, a linear warm-up into a cosine decay, knowledge distillation from a cached CNN
teacher's soft targets (tflm_vit/teacher.py, as DeiT does), and XLA-compiled steps for
the models whose shapes are static.

Augmentation runs inside the compiled step from stateless random ops keyed on (seed,
step), and batches are drawn from a permutation keyed on (seed, epoch): a run resumed
from a checkpoint draws exactly the batches and augmentations an uninterrupted one does.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tflm_vit.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """What a dataset's images tolerate without changing their class."""
    translate: int = 0  # pixels: pad by this much with `fill`, crop back at random
    hflip: bool = False  # a mirrored image is the same class (clothes: yes; digits: no)
    fill: float = -1.0  # the padding value, in the images' [-1, 1] range (black)

    def __post_init__(self):
        if not isinstance(self.translate, int) or self.translate < 0:
            raise ConfigError("augmentation.translate", f"must be a whole number of pixels "
                              f">= 0, got {self.translate!r}")

    @property
    def active(self) -> bool:
        return self.translate > 0 or self.hflip


NO_AUGMENTATION = Augmentation()


@dataclasses.dataclass(frozen=True)
class Recipe:
    learning_rate: float = 1e-3  # peak, reached at the end of the warm-up
    weight_decay: float = 0.05  # AdamW
    batch_size: int = 128
    warmup: float = 0.1  # fraction of the steps warming up linearly from 0
    label_smoothing: float = 0.1
    distillation: float = 0.5  # weight of the teacher's soft targets (0: no teacher)
    augment: bool = True  # apply the data's own Augmentation
    jit_compile: bool = True  # XLA for static-shape models (the supernet cannot use it)

    def __post_init__(self):
        if not self.learning_rate > 0:
            raise ConfigError("learning_rate", f"must be positive, got {self.learning_rate}")
        if int(self.batch_size) <= 0:
            raise ConfigError("batch_size", f"must be positive, got {self.batch_size}")
        for name in ("warmup", "label_smoothing", "distillation"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0 and not (name == "distillation" and v == 1.0):
                raise ConfigError(name, f"must be in [0, 1), got {v}")
        if self.weight_decay < 0:
            raise ConfigError("weight_decay", f"must be >= 0, got {self.weight_decay}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The pieces bench/recipe.py switches off one at a time (each a Recipe field change).
BASELINE_RECIPE = Recipe(warmup=0.0, label_smoothing=0.0, distillation=0.0, augment=False)


def schedule(recipe: Recipe, steps: int, peak: float | None = None):
    """Linear warm-up from 0 to the peak over recipe.warmup of the steps, then cosine
    decay to 0 at the last step."""
    import keras
    peak = recipe.learning_rate if peak is None else peak
    warm = int(recipe.warmup * steps)
    if warm == 0:
        return keras.optimizers.schedules.CosineDecay(peak, max(1, steps))
    return keras.optimizers.schedules.CosineDecay(0.0, max(1, steps - warm),
                                                  warmup_target=peak, warmup_steps=warm)


def optimizer(recipe: Recipe, steps: int, peak: float | None = None):
    import keras
    return keras.optimizers.AdamW(schedule(recipe, steps, peak),
                                  weight_decay=recipe.weight_decay)


def augment(images, aug: Augmentation, seed):
    """A batch of NHWC images, each translated (pad with aug.fill, crop back at a random
    offset) and flipped left-right at random. `seed`: a shape-[2] int32 tensor, e.g.
    (run seed, step); stateless, so the same seed gives the same batch."""
    import tensorflow as tf
    if not aug.active:
        return images
    n = tf.shape(images)[0]
    h, w = images.shape[1], images.shape[2]
    seeds = tf.random.experimental.stateless_split(seed, 3)
    if aug.translate:
        t = aug.translate
        padded = tf.pad(images, [[0, 0], [t, t], [t, t], [0, 0]], constant_values=aug.fill)
        dy = tf.random.stateless_uniform([n], seeds[0], 0, 2 * t + 1, tf.int32)
        dx = tf.random.stateless_uniform([n], seeds[1], 0, 2 * t + 1, tf.int32)
        rows = dy[:, None] + tf.range(h)[None]  # (n, h)
        cols = dx[:, None] + tf.range(w)[None]  # (n, w)
        images = tf.gather(padded, rows, axis=1, batch_dims=1)  # (n, h, W+2t, c)
        images = tf.gather(images, cols, axis=2, batch_dims=1)  # (n, h, w, c)
    if aug.hflip:
        flip = tf.random.stateless_uniform([n], seeds[2]) < 0.5
        images = tf.where(flip[:, None, None, None], tf.reverse(images, [2]), images)
    return images


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """The batches of one epoch as rows of indices (the last partial batch dropped),
    from a permutation keyed on (seed, epoch): a resumed run draws the same ones."""
    if n < batch_size:
        raise ConfigError("batch_size", f"{batch_size} is more than the {n} training images")
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    steps = n // batch_size
    return perm[:steps * batch_size].reshape(steps, batch_size)


def soft_cross_entropy(targets, logits):
    """Cross-entropy against a distribution (teacher probabilities, smoothed labels)."""
    import tensorflow as tf
    return tf.reduce_sum(-targets * tf.nn.log_softmax(logits), axis=-1)


def smoothed(labels, classes: int, smoothing: float):
    import tensorflow as tf
    return tf.one_hot(labels, classes) * (1.0 - smoothing) + smoothing / classes


def student_loss(recipe: Recipe, labels, logits, teacher_probs=None):
    """Per-example loss of a model learning from the labels (smoothed) and, with a
    teacher, from its soft targets: (1 - a) * CE(labels) + a * CE(teacher)."""
    classes = logits.shape[-1]
    loss = soft_cross_entropy(smoothed(labels, classes, recipe.label_smoothing), logits)
    if teacher_probs is not None and recipe.distillation > 0:
        a = recipe.distillation
        loss = (1.0 - a) * loss + a * soft_cross_entropy(teacher_probs, logits)
    return loss
