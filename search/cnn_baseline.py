"""MCUNet's point of comparison: a MobileNetV2-like CNN trained on the same data and run on
stock TFLM within the same SRAM and flash budgets (MCUFormer's CNN-vs-ViT comparison).
Reported beside the search, never gating it.

The family (MCUNet's TinyNAS space, shrunk to these budgets): a 3x3 stride-2 stem, four
stages of inverted residual blocks (1x1 expansion by `expansion`, 3x3 depthwise, 1x1
linear projection, a residual where shapes allow; channels 1, 1.5, 2, 3 x `width`, blocks
1, 2, 2, 1, strides 1, 2, 2, 1), global average pooling and a dense classifier. The knobs
are the input resolution, the width and the expansion. As TinyNAS does, the member with
the most MACs among those that fit is chosen (no training to choose); fitting is
measured: every member is exported to int8 TFLite and its arena read from TFLM's
recording allocator in the wheel, the same figure the ViT rows report.
"""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np

from tflm_vit.errors import BudgetError
from tflm_vit.search.budgets import Budgets

RESOLUTIONS = (16, 20, 24, 28, 32)
WIDTHS = (4, 6, 8, 12, 16)
EXPANSIONS = (2, 4, 6)
STAGES = ((1.0, 1, 1), (1.5, 2, 2), (2.0, 2, 2), (3.0, 1, 1))  # (channels x width, blocks, stride)


@dataclasses.dataclass(frozen=True)
class CnnConfig:
    resolution: int
    width: int
    expansion: int

    def short(self) -> str:
        return f"MobileNetV2-like {self.resolution}px w{self.width} t{self.expansion}"


def build(config: CnnConfig, channels: int, classes: int, batch_size: int | None = None):
    """The Keras model of one family member (ReLU6, batch norm folded at export)."""
    import keras
    from keras import layers

    def conv_bn(x, filters, kernel, stride, relu=True, depthwise=False):
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False)(x)
        else:
            x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU(6.0)(x) if relu else x

    inp = keras.Input((config.resolution, config.resolution, channels), batch_size=batch_size)
    x = conv_bn(inp, config.width, 3, 2)
    c_in = config.width
    for multiple, blocks, stride in STAGES:
        c_out = max(4, int(round(multiple * config.width)))
        for b in range(blocks):
            s = stride if b == 0 else 1
            y = conv_bn(x, c_in * config.expansion, 1, 1)
            y = conv_bn(y, None, 3, s, depthwise=True)
            y = conv_bn(y, c_out, 1, 1, relu=False)
            x = layers.Add()([x, y]) if s == 1 and c_in == c_out else y
            c_in = c_out
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inp, layers.Dense(classes)(x))


def macs(model) -> int:
    """Multiply-accumulates of one inference (convolutions and the classifier)."""
    from keras import layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D)):
            _, h, w, c_out = layer.output.shape
            k = layer.kernel_size[0] * layer.kernel_size[1]
            c_in = layer.input.shape[-1]
            total += h * w * k * (c_in if isinstance(layer, layers.DepthwiseConv2D)
                                  else c_in * c_out)
        elif isinstance(layer, layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def export(model, config: CnnConfig, calibration: np.ndarray) -> bytes:
    """The int8 TFLite model of a trained (or untrained) Keras family member."""
    from tflm_vit.export import keras_to_tflite, prepare_images
    single = build(config, model.inputs[0].shape[-1], model.outputs[0].shape[-1], 1)
    single.set_weights(model.get_weights())
    return keras_to_tflite(single, prepare_images(calibration, config.resolution))


def measure_member(config: CnnConfig, channels: int, classes: int) -> dict:
    """A member's MACs, flash and arena recorded by TFLM. Weight values do not change
    them, as long as no two constants are alike (the TFLite converter shares identical
    ones: fresh zero biases understated the arena by 32 bytes), so every variable holds
    seeded noise (scales and variances kept positive)."""
    from tflm_vit import runtime
    from tflm_vit.search.costs import fill_with_noise
    model = build(config, channels, classes)
    fill_with_noise(model.weights, positive=("gamma", "moving_variance"))
    calibration = np.random.default_rng(0).uniform(
        -1, 1, (2, config.resolution, config.resolution, channels)).astype(np.float32)
    tflite = export(model, config, calibration)
    return {"macs": macs(model), "flash": len(tflite),
            "arena": runtime.allocations(tflite).total}


def choose(budgets: Budgets, channels: int, classes: int, cache: dict) -> CnnConfig:
    """The member with the most MACs whose measured arena and flash fit the budgets;
    `cache` (config key -> measure_member's dict) keeps the measurements across calls."""
    best = None
    for r, w, t in itertools.product(RESOLUTIONS, WIDTHS, EXPANSIONS):
        config = CnnConfig(r, w, t)
        key = json.dumps([r, w, t, channels, classes])
        if key not in cache:
            cache[key] = measure_member(config, channels, classes)
        m = cache[key]
        fits = ((budgets.sram is None or m["arena"] <= budgets.sram)
                and (budgets.flash is None or m["flash"] <= budgets.flash))
        if fits and (best is None or m["macs"] > best[1]):
            best = (config, m["macs"])
    if best is None:
        raise BudgetError(f"no MobileNetV2-like member fits {budgets.describe()}")
    return best[0]


def train_and_measure(config: CnnConfig, train, val, test_x, test_y, epochs: int, recipe,
                      teacher=None, seed: int = 0, checkpoint_dir: str | None = None,
                      say=None) -> dict:
    """Trains the member with the recipe every model here trains with (tflm_vit/fit.py:
    augmentation, label smoothing, warm-up + cosine, the teacher's soft targets) for up
    to `epochs` epochs, scored on `val`, and measures the int8 model in TFLM on the test
    images: top-1, arena, flash, MACs, seconds."""
    import keras

    from tflm_vit import evaluate, runtime
    from tflm_vit.export import prepare_images
    from tflm_vit.fit import fit
    keras.utils.set_random_seed(seed)
    model = build(config, train.channels, train.num_classes)
    result = fit(model, prepare_images(train.x_train, config.resolution), train.y_train,
                 prepare_images(val.x_test, config.resolution), val.y_test, epochs, recipe,
                 train.augmentation, None if teacher is None else teacher.probs, None,
                 checkpoint_dir, seed, say, config.short(),
                 {"cnn": dataclasses.asdict(config),
                  "teacher": None if teacher is None else teacher.fingerprint})
    tflite = export(model, config, train.x_train[:100])
    x_test = prepare_images(test_x, config.resolution)
    q, _, _ = evaluate.run_int8(tflite, x_test)
    float_top1 = float(np.mean(np.argmax(model.predict(x_test, batch_size=1000, verbose=0),
                                         -1) == test_y))
    return {"top1": float(np.mean(np.argmax(q, -1) == test_y)), "float_top1": float_top1,
            "measured_arena": runtime.allocations(tflite).total, "flash": len(tflite),
            "macs": macs(model), "epochs": result.epochs, "train_seconds": result.seconds}
