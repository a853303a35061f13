"""ViTSupernet: the weight-sharing ViT whose subnets are SubnetConfigs of a SearchSpace."""

import keras
import numpy as np
import tensorflow as tf

from tflm_vit.config import SubnetConfig, low_rank
from tflm_vit.space import SearchSpace
from tflm_vit.supernet.layers import (ElasticBlock, ElasticDense, ElasticLayerNorm,
                                      ElasticPatchEmbed)
from tflm_vit.supernet.resize import (resize_images, resize_patch_kernel,
                                      resize_position_embedding)

# Keys of the encoded config; per-layer entries have length space.max_depth.
CONFIG_KEYS = ("resolution", "patch", "grid", "dim", "depth", "heads", "hidden", "rank",
               "stem")


def encode_config(config: SubnetConfig, space: SearchSpace) -> dict:
    """SubnetConfig -> dict of int32 arrays, the traced graph's only subnet input.

    Layers beyond the config's depth get harmless placeholders (they are skipped).
    """
    space.validate(config)
    pad = space.max_depth - config.depth
    hidden = [config.hidden_dim(i) for i in range(config.depth)]
    rank = [config.mlp_rank(i) or low_rank(1.0, config.embed_dim, h)
            for i, h in enumerate(hidden)]
    return {
        "resolution": np.int32(config.resolution), "patch": np.int32(config.patch_size),
        "grid": np.int32(config.grid), "dim": np.int32(config.embed_dim),
        "depth": np.int32(config.depth),
        "heads": np.array(list(config.num_heads) + [1] * pad, np.int32),
        "hidden": np.array(hidden + [1] * pad, np.int32),
        "rank": np.array(rank + [1] * pad, np.int32),
        "stem": np.int32(config.stem),
    }


def config_signature(space: SearchSpace) -> dict:
    """tf.TensorSpec for each encode_config entry (for tf.function input signatures)."""
    per_layer = tf.TensorSpec([space.max_depth], tf.int32)
    scalar = tf.TensorSpec([], tf.int32)
    return {k: per_layer if k in ("heads", "hidden", "rank") else scalar for k in CONFIG_KEYS}


class ViTSupernet(keras.Model):
    """Patch embedding -> blocks -> LayerNorm -> mean over tokens -> classifier.

    call(images, cfg): images NHWC at any resolution (resized to the subnet's),
    cfg from `encode_config`. Only the weights a subnet uses receive gradients.
    """

    def __init__(self, space: SearchSpace, **kwargs):
        super().__init__(**kwargs)
        self.space = space
        d, h = space.max_embed, space.max_hidden
        self.patch_embed = ElasticPatchEmbed(space.max_patch, space.max_grid,
                                             space.in_channels, d, space.max_stem,
                                             name="patch_embed")
        self.blocks = [ElasticBlock(d, h, name=f"block{i}") for i in range(space.max_depth)]
        self.norm = ElasticLayerNorm(d, name="norm")
        self.head = ElasticDense(d, space.num_classes, name="head")

    def build(self, input_shape=None):
        # Every weight is created in __init__ at its largest shape.
        self.built = True

    def call(self, images, cfg):
        x = resize_images(images, cfg["resolution"])
        dim = cfg["dim"]
        x = self.patch_embed(x, patch=cfg["patch"], grid=cfg["grid"], dim=dim,
                             stem=cfg.get("stem", 0))
        for i, block in enumerate(self.blocks):
            x = tf.cond(
                i < cfg["depth"],
                lambda b=block, i=i, x=x: b(x, dim=dim, heads=cfg["heads"][i],
                                           hidden=cfg["hidden"][i], rank=cfg["rank"][i]),
                lambda x=x: x)
        x = tf.reduce_mean(self.norm(x, n=dim), axis=1)
        return self.head(x, n_in=dim, n_out=self.space.num_classes)

    def predict_subnet(self, images, config: SubnetConfig, batch_size=256) -> np.ndarray:
        """Float logits of one subnet over a numpy batch of images."""
        cfg = encode_config(config, self.space)
        return np.concatenate([self(images[i:i + batch_size], cfg).numpy()
                               for i in range(0, len(images), batch_size)])

    def subnet_weights(self, config: SubnetConfig) -> dict:
        """The slices of the shared weights that `config` uses, as numpy arrays named
        like the layers of `build_subnet_model`."""
        self.space.validate(config)
        d, p, g = config.embed_dim, config.patch_size, config.grid
        pe = self.patch_embed
        s = config.stem
        patch_kernel = (resize_patch_kernel(pe.stem_patch_kernel.value, p).numpy()[:, :, :s, :d]
                        if s else resize_patch_kernel(pe.kernel.value, p).numpy()[..., :d])
        w = {
            "patch_embed/kernel": patch_kernel,
            "patch_embed/bias": pe.bias.numpy()[:d],
            "pos_embed": resize_position_embedding(pe.pos.value, g).numpy()[:, :d],
            "norm/gamma": self.norm.gamma.numpy()[:d], "norm/beta": self.norm.beta.numpy()[:d],
            "head/kernel": self.head.kernel.numpy()[:d], "head/bias": self.head.bias.numpy(),
        }
        if s:
            w["stem/kernel"] = pe.stem_kernel.numpy()[..., :s]
            w["stem/bias"] = pe.stem_bias.numpy()[:s]
        for i in range(config.depth):
            b, hid, r = self.blocks[i], config.hidden_dim(i), config.mlp_rank(i)
            for n in ("norm1", "norm2"):
                ln = getattr(b, n)
                w[f"block{i}/{n}/gamma"] = ln.gamma.numpy()[:d]
                w[f"block{i}/{n}/beta"] = ln.beta.numpy()[:d]
            for n in "qkvo":
                dense = getattr(b.attn, n)
                w[f"block{i}/{n}/kernel"] = dense.kernel.numpy()[:d, :d]
                w[f"block{i}/{n}/bias"] = dense.bias.numpy()[:d]
            for n, (n_in, n_out) in (("fc1", (d, hid)), ("fc2", (hid, d))):
                lr = getattr(b, n)
                u = lr.u.numpy()[:n_in, :r or min(n_in, n_out)]
                v = lr.v.numpy()[:r or min(n_in, n_out), :n_out]
                if r is None:
                    w[f"block{i}/{n}/kernel"] = u @ v
                else:
                    w[f"block{i}/{n}/u"], w[f"block{i}/{n}/v"] = u, v
                w[f"block{i}/{n}/bias"] = lr.bias.numpy()[:n_out]
        return w

    def get_config(self):
        return {**super().get_config(), "space": self.space.to_dict()}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(SearchSpace.from_dict(config.pop("space")), **config)


def seeded_supernet(space: SearchSpace, seed: int = 0) -> ViTSupernet:
    """A freshly initialised supernet of `space` with the same weights on every run and
    every process (Keras's initialisers draw from its global seed)."""
    keras.utils.set_random_seed(seed)
    return ViTSupernet(space)


def trained_shaped(net: ViTSupernet, seed: int = 0) -> ViTSupernet:
    """Sets every LayerNorm beta of `net` to small non-zero values (in place) and returns
    it. For memory figures from untrained weights: a trained model's betas are non-zero,
    and the export drops the ADD of a zero beta, so zero betas understate its arena."""
    rng = np.random.default_rng(seed)
    for w in net.weights:
        if w.path.endswith("beta"):
            w.assign(rng.normal(0.0, 0.05, w.shape).astype(np.float32))
    return net
