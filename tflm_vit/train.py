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

import keras
import numpy as np
import tensorflow as tf

from tflm_vit.data import Dataset
from tflm_vit.errors import ConfigError
from tflm_vit.space import SearchSpace
from tflm_vit.supernet.model import CONFIG_KEYS, ViTSupernet, encode_config


@dataclasses.dataclass
class TrainConfig:
    steps: int = 600
    batch_size: int = 64  # global, over all replicas
    learning_rate: float = 3e-3
    weight_decay: float = 0.05
    num_random: int = 2  # random subnets per step, besides the largest and smallest
    seed: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int = 200
    log_every: int = 20

    def __post_init__(self):
        for f in ("steps", "batch_size", "checkpoint_every", "log_every"):
            if int(getattr(self, f)) <= 0:
                raise ConfigError(f, f"must be positive, got {getattr(self, f)}")
        if self.num_random < 0:
            raise ConfigError("num_random", "must be >= 0")
        if not self.learning_rate > 0:
            raise ConfigError("learning_rate", "must be positive")


def sandwich_configs(space: SearchSpace, rng: np.random.Generator, num_random: int) -> dict:
    """[largest, smallest, random...] encoded and stacked along a leading axis."""
    configs = [space.largest(), space.smallest()] + [space.sample(rng)
                                                     for _ in range(num_random)]
    enc = [encode_config(c, space) for c in configs]
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
                   supernet: ViTSupernet | None = None, only=None):
    """Train (or resume, if cfg.checkpoint_dir holds a checkpoint). Returns
    (supernet, history) with history a list of {step, loss, largest_acc}.

    `supernet` may be built on a larger space than `space` (its weights cover every
    subnet of `space`): a search trains one candidate space's subnets on it. `only` (a
    SubnetConfig) fine-tunes that one subnet on the labels instead of the sandwich."""
    if data.num_classes != space.num_classes:
        raise ConfigError("num_classes", f"space has {space.num_classes} classes, data "
                          f"'{data.name}' has {data.num_classes}")
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise ConfigError("batch_size", f"{cfg.batch_size} does not split over {replicas} "
                          "replicas")
    if only is not None:
        space.validate(only)
    with strategy.scope():
        net = supernet or ViTSupernet(space)
        opt = keras.optimizers.AdamW(
            keras.optimizers.schedules.CosineDecay(cfg.learning_rate, cfg.steps,
                                                   warmup_target=None),
            weight_decay=cfg.weight_decay)
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

    ds = (tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
          .shuffle(len(data.x_train), seed=cfg.seed, reshuffle_each_iteration=True)
          .repeat().batch(cfg.batch_size, drop_remainder=True).prefetch(2))
    it = iter(strategy.experimental_distribute_dataset(ds))
    n_sub = 1 if only is not None else 2 + cfg.num_random

    def subnets(rng):
        if only is not None:
            enc = encode_config(only, space)
            return {k: v[np.newaxis] for k, v in enc.items()}
        return sandwich_configs(space, rng, cfg.num_random)

    def step_fn(x, y, cfgs):
        with tf.GradientTape() as tape:
            total = 0.0
            teacher = None
            for s in range(n_sub):
                logits = net(x, {k: v[s] for k, v in cfgs.items()})
                if teacher is None:  # the largest subnet learns from the labels
                    per_ex = tf.keras.losses.sparse_categorical_crossentropy(
                        y, logits, from_logits=True)
                    teacher = tf.stop_gradient(tf.nn.softmax(logits))
                    acc = tf.reduce_sum(tf.cast(tf.equal(
                        tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
                else:  # the others learn from the labels and distil from it
                    per_ex = 0.5 * (tf.keras.losses.categorical_crossentropy(
                        teacher, logits, from_logits=True)
                        + tf.keras.losses.sparse_categorical_crossentropy(
                            y, logits, from_logits=True))
                total += tf.nn.compute_average_loss(per_ex, global_batch_size=cfg.batch_size)
        variables = net.trainable_variables
        grads = tape.gradient(total, variables)
        opt.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return total, acc

    @tf.function
    def train_step(batch, cfgs):
        loss, acc = strategy.run(step_fn, args=(batch[0], batch[1], cfgs))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, acc, axis=None) / cfg.batch_size)

    history = []
    start = int(step_var.numpy())
    bar = _progress(progress)
    with bar:
        task = bar.add_task("supernet", total=cfg.steps, completed=start, loss=0.0, acc=0.0)
        for step in range(start, cfg.steps):
            rng = np.random.default_rng([cfg.seed, step])  # resumable sampling
            cfgs = {k: tf.constant(v) for k, v in subnets(rng).items()}
            loss, acc = train_step(next(it), cfgs)
            step_var.assign(step + 1)
            if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
                history.append({"step": step + 1, "loss": float(loss),
                                "largest_acc": float(acc)})
                bar.update(task, loss=float(loss), acc=float(acc))
            bar.update(task, completed=step + 1)
            if manager and ((step + 1) % cfg.checkpoint_every == 0 or step + 1 == cfg.steps):
                manager.save(checkpoint_number=step + 1)
    return net, history


def _progress(enabled: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeRemainingColumn)
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.3f} acc {task.fields[acc]:.2f}"),
                    TimeRemainingColumn(), disable=not enabled)


def evaluate_float(supernet: ViTSupernet, config, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of one subnet's float forward pass."""
    logits = supernet.predict_subnet(x, config)
    return float(np.mean(np.argmax(logits, -1) == y))
