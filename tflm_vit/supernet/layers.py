"""Elastic layers: each holds the largest weights and computes with a leading slice.

This is AutoFormer's weight entanglement: a subnet with embed dim d uses
kernel[:d, ...] of the shared kernel. Sizes arrive as int32 scalars, so one
traced graph serves every subnet (no retracing per sampled config).
"""

import keras
import tensorflow as tf

from tflm_vit.supernet.resize import resize_patch_kernel, resize_position_embedding

LN_EPSILON = 1e-6


class ElasticDense(keras.layers.Layer):
    """y = x . W[:n_in, :n_out] + b[:n_out]."""

    def __init__(self, max_in, max_out, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.max_in, self.max_out, self.use_bias = int(max_in), int(max_out), bool(use_bias)
        self.kernel = self.add_weight(shape=(self.max_in, self.max_out), name="kernel",
                                      initializer="glorot_uniform")
        self.bias = (self.add_weight(shape=(self.max_out,), name="bias", initializer="zeros")
                     if self.use_bias else None)

    def call(self, x, n_in, n_out):
        y = tf.matmul(x, self.kernel.value[:n_in, :n_out])
        return y + self.bias.value[:n_out] if self.use_bias else y

    def get_config(self):
        return {**super().get_config(), "max_in": self.max_in, "max_out": self.max_out,
                "use_bias": self.use_bias}


class ElasticLowRankDense(keras.layers.Layer):
    """y = (x . U[:n_in, :r]) . V[:r, :n_out] + b[:n_out]  (MCUFormer's W ~ U.V).

    The largest rank is min(max_in, max_out), so a subnet at full rank is an
    ordinary dense layer (exported as the single matrix U.V).
    """

    def __init__(self, max_in, max_out, **kwargs):
        super().__init__(**kwargs)
        self.max_in, self.max_out = int(max_in), int(max_out)
        self.max_rank = min(self.max_in, self.max_out)
        # Var(U.V) = r * (1/in) * (1/r) = 1/in: LeCun scale for the product.
        self.u = self.add_weight(shape=(self.max_in, self.max_rank), name="u",
                                 initializer=keras.initializers.RandomNormal(
                                     stddev=self.max_in ** -0.5))
        self.v = self.add_weight(shape=(self.max_rank, self.max_out), name="v",
                                 initializer=keras.initializers.RandomNormal(
                                     stddev=self.max_rank ** -0.5))
        self.bias = self.add_weight(shape=(self.max_out,), name="bias", initializer="zeros")

    def call(self, x, n_in, n_out, rank):
        t = tf.matmul(x, self.u.value[:n_in, :rank])
        return tf.matmul(t, self.v.value[:rank, :n_out]) + self.bias.value[:n_out]

    def get_config(self):
        return {**super().get_config(), "max_in": self.max_in, "max_out": self.max_out}


class ElasticLayerNorm(keras.layers.Layer):
    """LayerNorm over the first n features (same formula as keras LayerNormalization)."""

    def __init__(self, max_dim, **kwargs):
        super().__init__(**kwargs)
        self.max_dim = int(max_dim)
        self.gamma = self.add_weight(shape=(self.max_dim,), name="gamma", initializer="ones")
        self.beta = self.add_weight(shape=(self.max_dim,), name="beta", initializer="zeros")

    def call(self, x, n):
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        y = (x - mean) * tf.math.rsqrt(var + LN_EPSILON)
        return y * self.gamma.value[:n] + self.beta.value[:n]

    def get_config(self):
        return {**super().get_config(), "max_dim": self.max_dim}


class ElasticAttention(keras.layers.Layer):
    """Multi-head self-attention with elastic width and head count.

    Q, K and V are separate projections (a fused QKV split gives 5-D slices that
    TFLM rejects); head dim = embed_dim / heads.
    """

    def __init__(self, max_dim, **kwargs):
        super().__init__(**kwargs)
        self.max_dim = int(max_dim)
        self.q, self.k, self.v, self.o = (ElasticDense(max_dim, max_dim, name=n)
                                          for n in ("q", "k", "v", "o"))

    def call(self, x, dim, heads):
        shape = tf.shape(x)
        batch, tokens = shape[0], shape[1]
        head_dim = dim // heads

        def split(t):
            t = tf.reshape(t, tf.stack([batch, tokens, heads, head_dim]))
            return tf.transpose(t, [0, 2, 1, 3])

        q, k, v = (split(layer(x, n_in=dim, n_out=dim)) for layer in (self.q, self.k, self.v))
        scale = tf.math.rsqrt(tf.cast(head_dim, x.dtype))
        attn = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * scale, axis=-1)
        out = tf.transpose(tf.matmul(attn, v), [0, 2, 1, 3])
        return self.o(tf.reshape(out, tf.stack([batch, tokens, dim])), n_in=dim, n_out=dim)

    def get_config(self):
        return {**super().get_config(), "max_dim": self.max_dim}


class ElasticBlock(keras.layers.Layer):
    """Pre-norm transformer block: x + Attn(LN(x)); x + MLP(LN(x)) with exact GELU."""

    def __init__(self, max_dim, max_hidden, **kwargs):
        super().__init__(**kwargs)
        self.max_dim, self.max_hidden = int(max_dim), int(max_hidden)
        self.norm1 = ElasticLayerNorm(max_dim, name="norm1")
        self.attn = ElasticAttention(max_dim, name="attn")
        self.norm2 = ElasticLayerNorm(max_dim, name="norm2")
        self.fc1 = ElasticLowRankDense(max_dim, max_hidden, name="fc1")
        self.fc2 = ElasticLowRankDense(max_hidden, max_dim, name="fc2")

    def call(self, x, dim, heads, hidden, rank):
        x = x + self.attn(self.norm1(x, n=dim), dim=dim, heads=heads)
        h = self.fc1(self.norm2(x, n=dim), n_in=dim, n_out=hidden, rank=rank)
        h = tf.nn.gelu(h, approximate=False)
        return x + self.fc2(h, n_in=hidden, n_out=dim, rank=rank)

    def get_config(self):
        return {**super().get_config(), "max_dim": self.max_dim, "max_hidden": self.max_hidden}


class ElasticPatchEmbed(keras.layers.Layer):
    """Conv with kernel = stride = patch, written as patchify + matmul so that the
    patch size can be a tensor; plus a learned position embedding resized to the grid.

    With a stem (`stem` > 0 channels, at most max_stem), a 3x3 convolution with ReLU at
    full resolution comes first and the patch embedding reads its feature map: a second
    patch kernel, over stem channels, serves those subnets (the first reads the image)."""

    def __init__(self, max_patch, max_grid, channels, max_dim, max_stem=0, **kwargs):
        super().__init__(**kwargs)
        self.max_patch, self.max_grid = int(max_patch), int(max_grid)
        self.channels, self.max_dim, self.max_stem = int(channels), int(max_dim), int(max_stem)
        self.kernel = self.add_weight(
            shape=(self.max_patch, self.max_patch, self.channels, self.max_dim), name="kernel",
            initializer=keras.initializers.VarianceScaling(1.0, "fan_in", "truncated_normal"))
        self.bias = self.add_weight(shape=(self.max_dim,), name="bias", initializer="zeros")
        self.pos = self.add_weight(shape=(self.max_grid, self.max_grid, self.max_dim),
                                   name="pos", initializer=keras.initializers.TruncatedNormal(
                                       stddev=0.02))
        if self.max_stem:
            self.stem_kernel = self.add_weight(
                shape=(3, 3, self.channels, self.max_stem), name="stem_kernel",
                initializer=keras.initializers.HeNormal())
            self.stem_bias = self.add_weight(shape=(self.max_stem,), name="stem_bias",
                                             initializer="zeros")
            self.stem_patch_kernel = self.add_weight(
                shape=(self.max_patch, self.max_patch, self.max_stem, self.max_dim),
                name="stem_patch_kernel",
                initializer=keras.initializers.VarianceScaling(1.0, "fan_in",
                                                               "truncated_normal"))

    def _patches(self, x, kernel, channels, patch, grid, dim):
        batch = tf.shape(x)[0]
        x = tf.reshape(x, tf.stack([batch, grid, patch, grid, patch, channels]))
        x = tf.transpose(x, [0, 1, 3, 2, 4, 5])
        x = tf.reshape(x, tf.stack([batch, grid * grid, patch * patch * channels]))
        kernel = resize_patch_kernel(kernel, patch)[:, :, :channels, :dim]
        kernel = tf.reshape(kernel, tf.stack([patch * patch * channels, dim]))
        return tf.matmul(x, kernel)

    def call(self, images, patch, grid, dim, stem=0):
        def plain():
            return self._patches(images, self.kernel.value, self.channels, patch, grid, dim)

        def with_stem():
            k = self.stem_kernel.value[..., :stem]
            x = tf.nn.relu(tf.nn.conv2d(images, k, 1, "SAME") + self.stem_bias.value[:stem])
            return self._patches(x, self.stem_patch_kernel.value, stem, patch, grid, dim)

        x = tf.cond(stem > 0, with_stem, plain) if self.max_stem else plain()
        x = x + self.bias.value[:dim]
        return x + resize_position_embedding(self.pos.value, grid)[:, :dim]

    def get_config(self):
        return {**super().get_config(), "max_patch": self.max_patch, "max_grid": self.max_grid,
                "channels": self.channels, "max_dim": self.max_dim, "max_stem": self.max_stem}
