"""A static, batch-1 Keras model of one subnet, built from `ViTSupernet.subnet_weights`.

Every op here is chosen for the export's documented TFLite pattern (see
tflm_vit/export.py and converters/patterns.py): separate Q/K/V projections,
4-D attention tensors, LayerNormalization, a dense or two-factor MLP linear.
"""

import keras
import numpy as np
from keras import layers, ops

from tflm_vit.config import SubnetConfig
from tflm_vit.supernet.layers import LN_EPSILON

# GELU forms: "exact" is what the supernet trains with (erf); "sigmoid" is
# x * sigmoid(1.702 x), built from LOGISTIC + MUL which stock TFLM resolves.
GELU_SIGMOID_ALPHA = 1.702


class Gelu(layers.Layer):
    def __init__(self, form="exact", **kwargs):
        super().__init__(**kwargs)
        if form not in ("exact", "sigmoid"):
            raise ValueError(f"Gelu form must be 'exact' or 'sigmoid', got {form!r}")
        self.form = form

    def call(self, x):
        if self.form == "exact":
            return keras.activations.gelu(x, approximate=False)
        return x * ops.sigmoid(GELU_SIGMOID_ALPHA * x)

    def get_config(self):
        return {**super().get_config(), "form": self.form}


class PositionEmbedding(layers.Layer):
    """Adds a learned (tokens, dim) embedding (one constant ADD in TFLite)."""

    def __init__(self, tokens, dim, **kwargs):
        super().__init__(**kwargs)
        self.tokens, self.dim = int(tokens), int(dim)
        self.pos = self.add_weight(shape=(self.tokens, self.dim), name="pos", initializer="zeros")

    def call(self, x):
        return x + self.pos

    def get_config(self):
        return {**super().get_config(), "tokens": self.tokens, "dim": self.dim}


class Attention(layers.Layer):
    """Static multi-head attention: Q.K^T * scale -> softmax -> .V, at most 4-D."""

    def __init__(self, dim, heads, tokens, batch=1, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heads, self.tokens = int(dim), int(heads), int(tokens)
        # 1 for the export (every shape static); None for training in batches.
        self.batch = None if batch is None else int(batch)
        self.head_dim = self.dim // self.heads
        # A Python float: a NumPy float64 here would create float64 ops needing Flex.
        self.scale = float(1.0 / np.sqrt(self.head_dim))
        self.q, self.k, self.v, self.o = (layers.Dense(self.dim, name=n) for n in "qkvo")

    def call(self, x):
        n, h, hd = self.tokens, self.heads, self.head_dim
        b = -1 if self.batch is None else self.batch

        def split(t):
            return ops.transpose(ops.reshape(t, (b, n, h, hd)), (0, 2, 1, 3))

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        attn = ops.softmax(ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) * self.scale, axis=-1)
        out = ops.reshape(ops.transpose(ops.matmul(attn, v), (0, 2, 1, 3)), (b, n, self.dim))
        return self.o(out)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "heads": self.heads,
                "tokens": self.tokens, "batch": self.batch}


def _layer_name(key):
    """Weight-dict prefix 'block0/fc1' -> Keras layer name 'block0_fc1'."""
    return key.replace("/", "_")


def _linear(x, name, n_out, rank, weights):
    """Dense, or low-rank as Dense(rank, no bias) -> Dense(n_out)."""
    if rank is None:
        layer = layers.Dense(n_out, name=_layer_name(name))
        y = layer(x)
        layer.set_weights([weights[f"{name}/kernel"], weights[f"{name}/bias"]])
        return y
    first = layers.Dense(rank, use_bias=False, name=_layer_name(f"{name}/u"))
    second = layers.Dense(n_out, name=_layer_name(f"{name}/v"))
    y = second(first(x))
    first.set_weights([weights[f"{name}/u"]])
    second.set_weights([weights[f"{name}/v"], weights[f"{name}/bias"]])
    return y


def _layer_norm(x, name, weights):
    ln = layers.LayerNormalization(epsilon=LN_EPSILON, name=_layer_name(name))
    y = ln(x)
    ln.set_weights([weights[f"{name}/gamma"], weights[f"{name}/beta"]])
    return y


def build_subnet_model(config: SubnetConfig, weights: dict, in_channels: int = 3,
                       gelu: str = "exact", batch_size: int | None = 1) -> keras.Model:
    """Static Keras model of `config` carrying `weights` (from subnet_weights): batch 1
    for the export, batch_size None to train it on its own (subnet_training.py)."""
    d, n = config.embed_dim, config.num_tokens
    inp = keras.Input((config.resolution, config.resolution, in_channels),
                      batch_size=batch_size, name="image")
    x = inp
    if config.stem:  # early convolutions: one CONV_2D with its ReLU fused, in TFLite
        stem = layers.Conv2D(config.stem, 3, padding="same", activation="relu", name="stem")
        x = stem(x)
        stem.set_weights([weights["stem/kernel"], weights["stem/bias"]])
    conv = layers.Conv2D(d, config.patch_size, strides=config.patch_size, name="patch_embed")
    x = conv(x)
    conv.set_weights([weights["patch_embed/kernel"], weights["patch_embed/bias"]])
    x = layers.Reshape((n, d), name="tokens")(x)
    pos = PositionEmbedding(n, d, name="pos_embed")
    x = pos(x)
    pos.set_weights([weights["pos_embed"]])
    for i in range(config.depth):
        p = f"block{i}"
        attn = Attention(d, config.num_heads[i], n, batch_size, name=f"{p}_attn")
        y = attn(_layer_norm(x, f"{p}/norm1", weights))
        for sub in "qkvo":
            getattr(attn, sub).set_weights([weights[f"{p}/{sub}/kernel"],
                                            weights[f"{p}/{sub}/bias"]])
        x = layers.Add(name=f"{p}_add1")([x, y])
        y = _layer_norm(x, f"{p}/norm2", weights)
        rank = config.mlp_rank(i)
        y = _linear(y, f"{p}/fc1", config.hidden_dim(i), rank, weights)
        y = Gelu(gelu, name=f"{p}_gelu")(y)
        y = _linear(y, f"{p}/fc2", d, rank, weights)
        x = layers.Add(name=f"{p}_add2")([x, y])
    x = _layer_norm(x, "norm", weights)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    head = layers.Dense(weights["head/bias"].shape[0], name="head")
    out = head(x)
    head.set_weights([weights["head/kernel"], weights["head/bias"]])
    return keras.Model(inp, out, name="subnet")


def subnet_model_weights(model: keras.Model, config: SubnetConfig) -> dict:
    """The weights of a model `build_subnet_model` made, named as `subnet_weights` names
    them (its inverse): after training the model on its own, these export."""
    def get(name):
        return [np.asarray(w) for w in model.get_layer(_layer_name(name)).get_weights()]

    w = {}
    if config.stem:
        w["stem/kernel"], w["stem/bias"] = get("stem")
    w["patch_embed/kernel"], w["patch_embed/bias"] = get("patch_embed")
    (w["pos_embed"],) = get("pos_embed")
    w["head/kernel"], w["head/bias"] = get("head")
    w["norm/gamma"], w["norm/beta"] = get("norm")
    for i in range(config.depth):
        p = f"block{i}"
        for n in ("norm1", "norm2"):
            w[f"{p}/{n}/gamma"], w[f"{p}/{n}/beta"] = get(f"{p}/{n}")
        attn = model.get_layer(f"{p}_attn")
        for sub in "qkvo":
            w[f"{p}/{sub}/kernel"], w[f"{p}/{sub}/bias"] = [
                np.asarray(x) for x in getattr(attn, sub).get_weights()]
        for n in ("fc1", "fc2"):
            if config.mlp_rank(i) is None:
                w[f"{p}/{n}/kernel"], w[f"{p}/{n}/bias"] = get(f"{p}/{n}")
            else:
                (w[f"{p}/{n}/u"],) = get(f"{p}/{n}/u")
                w[f"{p}/{n}/v"], w[f"{p}/{n}/bias"] = get(f"{p}/{n}/v")
    return w
