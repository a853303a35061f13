"""Common microcontroller models, written the usual way (Keras, random weights, full int8
through TFLiteConverter, static batch 1): what a TFLM user brings to `analyze` and `plan`.

MLPerf Tiny's reference architectures (ResNet-8 for CIFAR-10, DS-CNN for keyword
spotting, a MobileNetV1 0.25 person detector for Visual Wake Words, a dense autoencoder
for anomaly detection) and MobileNetV2 at width 0.35, 96 px (keras.applications).
`bench/any_model.py` and the tests build them from here; `scale` shrinks every width
and the resolution for tests that need them in seconds. `keras_io_vit` is a ViT written
as keras.io's examples write one, for the converter's foreign-ViT patterns;
`keras_hub_vit` keras_hub's, and `timm_vit` timm's through litert-torch (PyTorch).
"""

from __future__ import annotations

import numpy as np

from tflm_vit.export import keras_to_tflite


def _layers():
    import keras
    return keras.layers


def resnet8(scale: float = 1.0):
    """MLPerf Tiny image classification: ResNet-8 on 32x32x3, 10 classes."""
    import keras
    L = _layers()
    w = [max(4, int(c * scale)) for c in (16, 32, 64)]
    x = inp = keras.Input((32, 32, 3), batch_size=1)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(w[0], 3, padding="same")(x)))
    for i, c in enumerate(w):
        s = 1 if i == 0 else 2
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(c, 3, s, padding="same")(x)))
        y = L.BatchNormalization()(L.Conv2D(c, 3, padding="same")(y))
        if s != 1 or x.shape[-1] != c:
            x = L.Conv2D(c, 1, s)(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.AveragePooling2D(x.shape[1])(x)
    x = L.Dense(10)(L.Flatten()(x))
    return keras.Model(inp, L.Softmax()(x), name="resnet8")


def ds_cnn(scale: float = 1.0):
    """MLPerf Tiny keyword spotting: DS-CNN on 49x10 MFCCs, 12 classes."""
    import keras
    L = _layers()
    c = max(8, int(64 * scale))
    x = inp = keras.Input((49, 10, 1), batch_size=1)
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(c, (10, 4), (2, 2), padding="same")(x)))
    for _ in range(4):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(c, 1)(x)))
    x = L.AveragePooling2D((x.shape[1], x.shape[2]))(x)
    x = L.Dense(12)(L.Flatten()(x))
    return keras.Model(inp, L.Softmax()(x), name="ds_cnn")


def mobilenet_v1_vww(scale: float = 1.0, resolution: int = 96):
    """MLPerf Tiny visual wake words: MobileNetV1 alpha 0.25 on 96x96x3, 2 classes."""
    import keras
    L = _layers()

    def bn_relu(x):
        return L.ReLU(6.0)(L.BatchNormalization()(x))
    w = lambda c: max(4, int(c * 0.25 * scale))  # noqa: E731
    x = inp = keras.Input((resolution, resolution, 3), batch_size=1)
    x = bn_relu(L.Conv2D(w(32), 3, 2, padding="same")(x))
    for c, s in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                 (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)):
        x = bn_relu(L.DepthwiseConv2D(3, s, padding="same")(x))
        x = bn_relu(L.Conv2D(w(c), 1)(x))
    x = L.AveragePooling2D((x.shape[1], x.shape[2]))(x)
    x = L.Dense(2)(L.Flatten()(x))
    return keras.Model(inp, L.Softmax()(x), name="mobilenet_v1_vww")


def mobilenet_v2(alpha: float = 0.35, resolution: int = 96, classes: int = 10):
    """keras.applications' MobileNetV2 (random weights), the classic TFLM demo model."""
    import keras
    return keras.applications.MobileNetV2((resolution, resolution, 3), alpha=alpha,
                                          weights=None, classes=classes,
                                          classifier_activation="softmax")


def mobilenet_v3_small(alpha: float = 0.75, resolution: int = 96, classes: int = 10):
    """keras.applications' MobileNetV3-Small (random weights): hard-swish as its own
    HARD_SWISH op after each convolution and squeeze-excite MULs, the elementwise ops
    TFLM runs in place under our plan (aliasing.py)."""
    import keras
    return keras.applications.MobileNetV3Small((resolution, resolution, 3), alpha=alpha,
                                               weights=None, classes=classes,
                                               include_preprocessing=False,
                                               dropout_rate=0.0)


def autoencoder(scale: float = 1.0):
    """MLPerf Tiny anomaly detection: a dense autoencoder over 640 log-mel features."""
    import keras
    L = _layers()
    x = inp = keras.Input((640,), batch_size=1)
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.ReLU()(L.BatchNormalization()(L.Dense(max(4, int(units * scale)))(x)))
    return keras.Model(inp, L.Dense(640)(x), name="autoencoder")


def op_sampler():
    """One small model holding every builtin the memory model knows that Keras layers
    give (tests and bench/any_model.py check the arena of each on every target)."""
    import keras
    import tensorflow as tf
    L = _layers()
    x = inp = keras.Input((16, 16, 8), batch_size=1)
    a = L.MaxPooling2D(2)(x)                                             # MAX_POOL_2D
    b = L.AveragePooling2D(2)(L.Conv2D(8, 1)(x))                         # CONV_2D, AVERAGE_POOL_2D
    c = L.ReLU()(L.Concatenate()([a, b]))                                # CONCATENATION, RELU
    c = L.DepthwiseConv2D(5, padding="same")(c)                          # DEPTHWISE_CONV_2D
    d = L.ReLU(6.0)(L.Lambda(lambda t: t[:, 1:7, :, :])(c))              # STRIDED_SLICE, RELU6
    d = L.Lambda(lambda t: tf.slice(t, [0, 0, 1, 0], [1, 6, 6, -1]))(d)  # SLICE
    e = L.ZeroPadding2D(1)(d)                                            # PAD
    f = L.Activation("hard_swish")(e)                                    # HARD_SWISH
    h = L.Multiply()([L.Activation("sigmoid")(f), f])                    # LOGISTIC, MUL
    i = L.Lambda(lambda t: tf.transpose(t, (0, 2, 1, 3)))(h)             # TRANSPOSE
    j = L.Lambda(lambda t: tf.reduce_mean(t, axis=(1, 2)))(i)            # MEAN
    k = L.Lambda(lambda t: tf.stack([t, t * 0.5], axis=1))(j)            # PACK
    m = L.Lambda(lambda t: tf.gather(t, [0, 2, 1, 3], axis=2))(k)        # GATHER
    n = L.Activation("tanh")(L.Flatten()(m))                             # TANH, RESHAPE
    o = L.Subtract()([n, L.Dense(n.shape[-1])(n)])                       # FULLY_CONNECTED, SUB
    return keras.Model(inp, L.Softmax()(L.Dense(10)(o)), name="op_sampler")


def _class_token_and_positions():
    """A keras.io-style layer: an optional class token prepended to the tokens, then a
    learned position embedding added."""
    import keras

    class TokensAndPositions(keras.layers.Layer):
        def __init__(self, class_token: bool = False, **kw):
            super().__init__(**kw)
            self.class_token = class_token

        def build(self, shape):
            tokens, dim = shape[1] + int(self.class_token), shape[2]
            self.positions = self.add_weight(shape=(tokens, dim), name="positions",
                                             initializer="random_normal")
            if self.class_token:
                self.token = self.add_weight(shape=(1, 1, dim), name="class_token",
                                             initializer="random_normal")

        def call(self, x):
            if self.class_token:
                ops = keras.ops
                token = ops.broadcast_to(self.token, (ops.shape(x)[0], 1, x.shape[2]))
                x = ops.concatenate([token, x], axis=1)
            return x + self.positions

        def get_config(self):
            return {**super().get_config(), "class_token": self.class_token}

    return TokensAndPositions


def keras_io_vit(patch_embedding: str = "conv", pool: str = "mean", gelu: str = "exact",
                 image: int = 28, channels: int = 1, patch: int = 4, dim: int = 64,
                 blocks: int = 2, heads: int = 4, mlp_ratio: int = 2, classes: int = 10,
                 batch_size: int | None = 1):
    """A ViT written the way keras.io's examples write one: Conv2D (or
    `keras.ops.image.extract_patches` + Dense) patch embedding, learned position
    embedding, pre-norm blocks of LayerNormalization, keras.layers.MultiHeadAttention and
    a Dense(activation=gelu) MLP, then mean pooling or a class token. `gelu` "exact" or
    "tanh" (approximate=True); `batch_size=None` leaves the batch free, as
    `TFLiteConverter.from_keras_model` sees a model built without one."""
    import keras
    if patch_embedding not in ("conv", "extract_patches") or pool not in ("mean", "class_token") \
            or gelu not in ("exact", "tanh"):
        raise ValueError(f"keras_io_vit: unknown variant {patch_embedding}/{pool}/{gelu}")
    L = _layers()
    tokens = (image // patch) ** 2
    x = inp = keras.Input((image, image, channels), batch_size=batch_size)
    if patch_embedding == "conv":
        x = L.Conv2D(dim, patch, patch)(x)
    else:
        x = L.Dense(dim)(keras.ops.image.extract_patches(x, patch))
    x = L.Reshape((tokens, dim))(x)
    x = _class_token_and_positions()(pool == "class_token")(x)
    act = (lambda t: keras.activations.gelu(t, approximate=True)) if gelu == "tanh" \
        else keras.activations.gelu
    for _ in range(blocks):
        y = L.LayerNormalization(epsilon=1e-6)(x)
        x = L.Add()([x, L.MultiHeadAttention(heads, dim // heads, dropout=0.1)(y, y)])
        y = L.LayerNormalization(epsilon=1e-6)(x)
        x = L.Add()([x, L.Dense(dim)(L.Dense(mlp_ratio * dim, activation=act)(y))])
    x = L.LayerNormalization(epsilon=1e-6)(x)
    x = L.GlobalAveragePooling1D()(x) if pool == "mean" else x[:, 0]
    return keras.Model(inp, L.Dense(classes)(x), name="keras_io_vit")


def keras_hub_vit(image: int = 28, channels: int = 1, patch: int = 4, dim: int = 64,
                  blocks: int = 2, heads: int = 4, mlp_dim: int = 128, classes: int = 10,
                  batch_size: int | None = 1):
    """keras_hub's ViTBackbone (class token, learned positions, exact GELU), random
    weights, with a Dense head on the class token. keras_hub is optional: its ViT needs
    none of the text packages its install pulls in (`pip install --no-deps keras-hub
    regex tokenizers`, as `make install` does, keeps this environment's TensorFlow)."""
    import keras
    try:
        import keras_hub
    except ImportError as e:
        raise ImportError(f"keras_hub_vit needs keras_hub ({e})") from None
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(image, image, channels), patch_size=patch, num_layers=blocks,
        num_heads=heads, hidden_dim=dim, mlp_dim=mlp_dim)
    inp = keras.Input((image, image, channels), batch_size=batch_size)
    tokens = backbone(inp)
    return keras.Model(inp, keras.layers.Dense(classes)(tokens[:, 0]), name="keras_hub_vit")


TORCH_PYTHON = "TFLM_VIT_TORCH_PYTHON"  # the interpreter of a torch environment
TORCH_MODULES = ("torch", "timm", "litert_torch", "ai_edge_quantizer")


def torch_python() -> str:
    """The Python of an environment with torch, timm, litert-torch and ai-edge-quantizer:
    $TFLM_VIT_TORCH_PYTHON, else this one. They pin their own torch and bring no
    TensorFlow, so a separate venv is the easy way (on x86-64 here: `python -m venv T &&
    T/bin/pip install torch==2.14.1 torchvision==0.29.1 timm litert-torch`)."""
    import os
    import sys
    return os.environ.get(TORCH_PYTHON) or sys.executable


def torch_missing(python: str | None = None) -> str | None:
    """Why timm_vit cannot run (one line), or None when it can."""
    import subprocess
    python = python or torch_python()
    probe = ("import importlib.util as u; print(' '.join(m for m in "
             f"{TORCH_MODULES!r} if u.find_spec(m) is None))")
    try:
        proc = subprocess.run([python, "-c", probe], capture_output=True, text=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{python} does not run ({e})"
    missing = proc.stdout.split()
    if proc.returncode != 0 or missing:
        return (f"{python} lacks {', '.join(missing) or 'a working import system'}: set "
                f"{TORCH_PYTHON} to the Python of an environment with "
                f"{', '.join(TORCH_MODULES)} (tflm_vit.model_zoo.torch_python)")
    return None


def timm_vit(calibration: np.ndarray, x_train=None, y_train=None, epochs: int = 0,
             seed: int = 0, python: str | None = None, **arch) -> bytes:
    """timm's VisionTransformer (pretrained=False) as a full-int8 TFLite model the way a
    PyTorch user makes one (litert-torch, then ai-edge-quantizer's static int8 recipe,
    calibrated on `calibration`, NHWC float images), trained `epochs` on x_train /
    y_train first: tflm_vit/torch_export.py, run in the torch environment
    (torch_python()). Its input is PyTorch's NCHW (1, C, H, W). `arch`: patch, dim,
    depth, heads, mlp_ratio, classes (torch_export.build)."""
    import json
    import pathlib
    import subprocess
    import tempfile

    from tflm_vit.errors import TflmVitError
    python = python or torch_python()
    why = torch_missing(python)
    if why:
        raise TflmVitError(f"timm_vit: {why}")
    script = pathlib.Path(__file__).with_name("torch_export.py")
    with tempfile.TemporaryDirectory() as d:
        data = {"calibration": np.asarray(calibration, np.float32)}
        if epochs:
            data.update(x_train=np.asarray(x_train, np.float32), y_train=np.asarray(y_train))
        np.savez(f"{d}/data.npz", **data)
        proc = subprocess.run([python, str(script), "--data", f"{d}/data.npz", "--out",
                               f"{d}/vit.tflite", "--epochs", str(epochs), "--seed", str(seed),
                               "--arch", json.dumps(arch)], capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise TflmVitError(f"timm_vit: {script.name} failed: {last}")
        return pathlib.Path(f"{d}/vit.tflite").read_bytes()


# tests/data/timm_vit_tiny_int8.tflite (a committed model, so the converter's timm tests
# run without torch): how it is made, and what bench/foreign_vits.py remakes and compares.
TIMM_TINY_ARCH = dict(patch=4, dim=32, depth=1, heads=2, mlp_ratio=2.0)


def timm_tiny_images() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((16, 16, 16, 1)).astype(np.float32)


def timm_tiny() -> bytes:
    """The committed tiny timm model, made again: trained one epoch on 64 seeded images
    first, so its LayerNorms' affines are not the identity (an untrained export drops
    them, and the final one, which a trained model keeps outside its LayerNorm, would go
    untested)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 16, 16, 1)).astype(np.float32)
    return timm_vit(timm_tiny_images(), x, rng.integers(0, 10, 64), epochs=1,
                    **TIMM_TINY_ARCH)


def op_signature(data: bytes) -> list:
    """[op name, [output shapes]] per op: what the same export route makes again."""
    from tflm_vit.tflite_model import parse_model
    info = parse_model(data)
    return [[op.name, [list(info.tensors[i].shape) for i in op.outputs]] for op in info.ops]


BUILDERS = {"mobilenet_v2_0.35_96": mobilenet_v2,
            "mobilenet_v3_small_0.75_96": mobilenet_v3_small, "resnet8": resnet8, "ds_cnn": ds_cnn,
            "mobilenet_v1_vww": mobilenet_v1_vww, "autoencoder": autoencoder,
            "op_sampler": op_sampler, "keras_io_vit": keras_io_vit,
            "keras_hub_vit": keras_hub_vit}


def int8_tflite(model, samples: int = 8, seed: int = 0) -> bytes:
    """`model` at batch 1, fully int8 through TFLiteConverter, calibrated on
    standard-normal inputs (random weights: the arena does not depend on the values)."""
    model = _static(model)
    shape = tuple(model.inputs[0].shape[1:])
    rng = np.random.default_rng(seed)
    return keras_to_tflite(model, rng.standard_normal((samples, *shape)).astype(np.float32))


def build(name: str, **kw) -> bytes:
    """The named zoo model as int8 TFLite bytes, its batch norms set to the statistics
    of random inputs (as training leaves them) so that activations keep their scale
    through the depth: with the initial ones, a random MobileNet's logits span 1e-6,
    below what TFLM's SOFTMAX accepts (tflm_vit.aborts)."""
    import keras
    keras.utils.set_random_seed(0)
    model = BUILDERS[name](**kw)
    _settle_batch_norms(model)
    return int8_tflite(model)


def _settle_batch_norms(model, images: int = 16) -> None:
    import keras
    norms = [layer for layer in _all_layers(model)
             if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    x = np.random.default_rng(1).standard_normal(
        (images, *model.inputs[0].shape[1:])).astype(np.float32)
    for layer in norms:
        layer.momentum = 0.0  # the moving statistics become this batch's
    model(x, training=True)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _static(model):
    """A batch-1 wrapper for models built with a free batch (keras.applications)."""
    if model.inputs[0].shape[0] == 1:
        return model
    import keras
    inp = keras.Input(tuple(model.inputs[0].shape[1:]), batch_size=1)
    return keras.Model(inp, model(inp), name=model.name)
