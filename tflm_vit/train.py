"""Supernet training with the sandwich rule, under any tf.distribute strategy.

Each step trains the largest subnet on the labels and the smallest plus
`num_random` random subnets on the labels and the largest one's soft predictions
(in-place distillation, as in BigNAS), with one summed gradient. Configs are fed to one
traced step as int32 tensors, so sampling never retraces.

Scaling out is TensorFlow's own: pass `tf.distribute.MirroredStrategy()` for the
GPUs of one machine, or `MultiWorkerMirroredStrategy()` with TF_CONFIG set on each
worker for many machines (see README). The global batch is split over replicas.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from tflm_vit import interrupt
from tflm_vit.data import Dataset
from tflm_vit.errors import ConfigError
from tflm_vit.recipe import Recipe
from tflm_vit.space import SearchSpace
from tflm_vit.supernet.model import CONFIG_KEYS, ViTSupernet, encode_config


# The supernet's recipe: the final trainings' (recipe.py) at a smaller batch and a higher
# peak rate (it trains for fewer steps), without XLA (its shapes follow the sampled
# subnet, which XLA cannot compile).
SUPERNET_RECIPE = Recipe(learning_rate=2e-3, batch_size=64, warmup=0.05, jit_compile=False)


@dataclasses.dataclass
class TrainConfig:
    steps: int = 600
    recipe: Recipe = SUPERNET_RECIPE  # batch size (global, over all replicas), rate, ...
    num_random: int = 2  # random subnets per step, besides the largest and smallest
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 200
    log_every: int = 20

    def __post_init__(self):
        for f in ("steps", "checkpoint_every", "log_every"):
            if int(getattr(self, f)) <= 0:
                raise ConfigError(f, f"must be positive, got {getattr(self, f)}")
        if self.num_random < 0:
            raise ConfigError("num_random", "must be >= 0")

    @property
    def batch_size(self) -> int:
        return self.recipe.batch_size

    @classmethod
    def epochs(cls, epochs: float, images: int, recipe: Recipe = SUPERNET_RECIPE, **kw):
        """The steps of `epochs` passes over `images` training images."""
        if not epochs > 0:
            raise ConfigError("epochs", f"must be positive, got {epochs}")
        return cls(steps=max(1, round(epochs * images / recipe.batch_size)), recipe=recipe,
                   **kw)


def sandwich_configs(space: SearchSpace, rng: np.random.Generator, num_random: int,
                     net_space: SearchSpace | None = None) -> dict:
    """[largest, smallest, random...] of `space` encoded for a supernet of `net_space`
    (default: `space`; a larger space whose subspace `space` is) and stacked along a
    leading axis."""
    configs = [space.largest(), space.smallest()] + [space.sample(rng)
                                                     for _ in range(num_random)]
    enc = [encode_config(c, net_space or space) for c in configs]
    return {k: np.stack([e[k] for e in enc]) for k in CONFIG_KEYS}


def _check_resume(directory: str, space: SearchSpace) -> None:
    path = os.path.join(directory, "space.json")
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != json.loads(space.to_json()):
            raise ConfigError("space", f"checkpoint in {directory} was trained with another "
                              f"search space {saved}; use a new checkpoint_dir")
    else:
        os.makedirs(directory, exist_ok=True)
        with open(path, "w") as f:
            f.write(space.to_json())


def checkpoint_variables(net: ViTSupernet) -> dict:
    """Every supernet variable, keyed by position and path (paths repeat across blocks).
    Checkpoints hold them explicitly: tf.train's object graph does not see the variables
    of Keras layers kept in a Python list (the blocks), so `model=net` alone would save
    only the top-level layers."""
    return {f"v{i:03d}_{v.path.replace('/', '.')}": v for i, v in enumerate(net.variables)}


def load_supernet(directory: str) -> ViTSupernet:
    """The supernet of the latest checkpoint in `directory` (weights only)."""
    path = os.path.join(directory, "space.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{directory}: no supernet checkpoint (space.json missing)")
    with open(path) as f:
        space = SearchSpace.from_dict(json.load(f))
    net = ViTSupernet(space)
    latest = tf.train.latest_checkpoint(directory)
    if latest is None:
        raise FileNotFoundError(f"{directory}: no checkpoint files")
    status = tf.train.Checkpoint(variables=checkpoint_variables(net)).restore(latest)
    try:
        status.expect_partial().assert_existing_objects_matched()
    except AssertionError as e:
        raise FileNotFoundError(f"{latest}: checkpoint does not hold every supernet variable "
                                f"(written by an older tflm-vit?): {str(e)[:200]}") from e
    return net


def train_supernet(space: SearchSpace, data: Dataset, cfg: TrainConfig = TrainConfig(),
                   strategy: tf.distribute.Strategy | None = None, progress: bool = True,
                   supernet: ViTSupernet | None = None, only=None, teacher=None):
    """Train (or resume, if cfg.checkpoint_dir holds a checkpoint). Returns
    (supernet, history) with history a list of {step, loss, largest_acc}.

    `supernet` may be built on a larger space than `space` (its weights cover every
    subnet of `space`): a search trains one candidate space's subnets on it. `only` (a
    SubnetConfig) trains that one subnet on the labels instead of the sandwich.
    `teacher` (tflm_vit.teacher.Teacher of data's training images): the largest subnet
    (or `only`) also learns from its soft targets, with cfg.recipe.distillation's weight.

    Batches come from a permutation per epoch keyed on (seed, epoch) and augmentations
    from (seed, step), so a resumed run trains on exactly what an uninterrupted one does."""
    from tflm_vit.recipe import augment, epoch_batches, optimizer, smoothed, \
        soft_cross_entropy, student_loss
    if data.num_classes != space.num_classes:
        raise ConfigError("num_classes", f"space has {space.num_classes} classes, data "
                          f"'{data.name}' has {data.num_classes}")
    if teacher is not None and len(teacher.probs) != len(data.y_train):
        raise ConfigError("teacher", f"holds {len(teacher.probs)} soft targets, the training "
                          f"set has {len(data.y_train)} images")
    recipe = cfg.recipe
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise ConfigError("batch_size", f"{cfg.batch_size} does not split over {replicas} "
                          "replicas")
    if only is not None:
        space.validate(only)
    with strategy.scope():
        net = supernet or ViTSupernet(space)
        opt = optimizer(recipe, cfg.steps)
        opt.build(net.trainable_variables)
        step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    ckpt = tf.train.Checkpoint(variables=checkpoint_variables(net), optimizer=opt,
                               step=step_var)
    manager = None
    if cfg.checkpoint_dir:
        _check_resume(cfg.checkpoint_dir, space)
        manager = tf.train.CheckpointManager(ckpt, cfg.checkpoint_dir, max_to_keep=2)
        if manager.latest_checkpoint:
            ckpt.restore(manager.latest_checkpoint)

    n_sub = 1 if only is not None else 2 + cfg.num_random
    aug = data.augmentation if recipe.augment else None
    probs = teacher.probs if teacher is not None and recipe.distillation > 0 else None
    per_epoch = len(data.y_train) // cfg.batch_size
    if per_epoch == 0:
        epoch_batches(len(data.y_train), cfg.batch_size, cfg.seed, 0)  # the clear error

    def subnets(rng):
        if only is not None:
            enc = encode_config(only, net.space)
            return {k: v[np.newaxis] for k, v in enc.items()}
        return sandwich_configs(space, rng, cfg.num_random, net.space)

    def step_fn(x, y, t, key, cfgs):
        if aug is not None:
            x = augment(x, aug, key)
        with tf.GradientTape() as tape:
            total = 0.0
            largest = None
            for s in range(n_sub):
                logits = net(x, {k: v[s] for k, v in cfgs.items()})
                if largest is None:  # the largest subnet learns from labels (and teacher)
                    per_ex = student_loss(recipe, y, logits,
                                          t if probs is not None else None)
                    largest = tf.stop_gradient(tf.nn.softmax(logits))
                    acc = tf.reduce_sum(tf.cast(tf.equal(
                        tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
                else:  # the others learn from the labels and distil from it
                    per_ex = 0.5 * (soft_cross_entropy(largest, logits) + soft_cross_entropy(
                        smoothed(y, space.num_classes, recipe.label_smoothing), logits))
                total += tf.nn.compute_average_loss(per_ex, global_batch_size=cfg.batch_size)
        variables = net.trainable_variables
        grads = tape.gradient(total, variables)
        opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return total, acc

    @tf.function
    def train_step(x, y, t, key, cfgs):
        loss, acc = strategy.run(step_fn, args=(x, y, t, key, cfgs))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, acc, axis=None) / cfg.batch_size)

    def batch(step: int):
        """This step's images, labels, teacher targets and augmentation key, split over
        the replicas."""
        epoch, i = divmod(step, per_epoch)
        idx = epoch_batches(len(data.y_train), cfg.batch_size, cfg.seed, epoch)[i]
        x, y = data.x_train[idx], data.y_train[idx].astype(np.int32)
        t = (probs[idx] if probs is not None
             else np.zeros((len(idx), space.num_classes), np.float32))
        if replicas == 1:
            return (tf.constant(x), tf.constant(y), tf.constant(t),
                    tf.constant([cfg.seed, step], tf.int32))
        per = cfg.batch_size // replicas

        def part(ctx):
            r = ctx.replica_id_in_sync_group
            sl = slice(r * per, (r + 1) * per)
            return (tf.constant(x[sl]), tf.constant(y[sl]), tf.constant(t[sl]),
                    tf.constant([cfg.seed, step * replicas + r], tf.int32))
        return strategy.experimental_distribute_values_from_function(part)

    history = []
    start = int(step_var.numpy())
    bar = _progress(progress)
    with bar:
        task = bar.add_task("supernet", total=cfg.steps, completed=start, loss=0.0, acc=0.0,
                            epoch=f"{start / per_epoch:.1f}")
        for step in range(start, cfg.steps):
            interrupt.check()
            rng = np.random.default_rng([cfg.seed, step])  # resumable sampling
            cfgs = {k: tf.constant(v) for k, v in subnets(rng).items()}
            loss, acc = train_step(*batch(step), cfgs)
            step_var.assign(step + 1)
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                history.append({"step": step + 1, "loss": float(loss),
                                "largest_acc": float(acc)})
                bar.update(task, loss=float(loss), acc=float(acc))
            bar.update(task, completed=step + 1, epoch=f"{(step + 1) / per_epoch:.1f}")
            if manager and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps):
                manager.save(checkpoint_number=step + 1)
    return net, history


def _progress(enabled: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("epoch {task.fields[epoch]}"),
                    TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[acc]:.2f}"),
                    TimeRemainingColumn(), disable=not enabled)


def evaluate_float(supernet: ViTSupernet, config, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of one subnet's float forward pass."""
    logits = supernet.predict_subnet(x, config)
    return float(np.mean(np.argmax(logits, -1) == y))
