import numpy as np
import pytest
import tensorflow as tf

from tflm_vit.space import DEFAULT_SPACE
from tflm_vit.supernet import ViTSupernet, build_subnet_model, encode_config


@pytest.fixture(scope="module")
def net():
    return ViTSupernet(DEFAULT_SPACE)


def test_static_subnet_equals_supernet_forward(net):
    """The exported graph computes what the supernet trained: same weights, same math."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    configs = [DEFAULT_SPACE.largest(), DEFAULT_SPACE.smallest()] + \
        [DEFAULT_SPACE.sample(rng) for _ in range(4)]
    for c in configs:
        y = net(x, encode_config(c, DEFAULT_SPACE)).numpy()
        xr = tf.image.resize(x, [c.resolution] * 2).numpy()
        model = build_subnet_model(c, net.subnet_weights(c))
        y2 = np.concatenate([model(xr[i:i + 1]).numpy() for i in range(len(x))])
        np.testing.assert_allclose(y, y2, atol=2e-5, err_msg=c.short())


def test_subnets_share_leading_slices(net):
    c = DEFAULT_SPACE.smallest()
    w = net.subnet_weights(c)
    q = net.blocks[0].attn.q.kernel.numpy()
    np.testing.assert_array_equal(w["block0/q/kernel"], q[:c.embed_dim, :c.embed_dim])
    # Low-rank factors are leading slices too; full rank folds into one dense matrix.
    lr = net.blocks[0].fc1
    r = c.mlp_rank(0)
    np.testing.assert_array_equal(w["block0/fc1/u"], lr.u.numpy()[:c.embed_dim, :r])
    big = DEFAULT_SPACE.largest()
    wb = net.subnet_weights(big)
    np.testing.assert_allclose(wb["block0/fc1/kernel"],
                               lr.u.numpy()[:64, :64] @ lr.v.numpy()[:64, :128], rtol=1e-6)


def test_unused_weights_get_no_gradient(net):
    c = DEFAULT_SPACE.smallest()
    x = np.zeros((2, 32, 32, 3), np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(net(x + 0.5, encode_config(c, DEFAULT_SPACE)))
    q = net.blocks[0].attn.q.kernel
    g = tape.gradient(loss, q.value)
    g = tf.convert_to_tensor(g).numpy()
    assert np.all(g[c.embed_dim:, :] == 0) and np.all(g[:, c.embed_dim:] == 0)
    assert np.any(g[:c.embed_dim, :c.embed_dim] != 0)


def test_stem_subnets_equal_their_static_models_and_convert_with_a_stock_stem():
    """A subnet with a convolutional stem: the static model (batch 1 for the export, any
    batch for training, its weights read back unchanged) computes what the supernet does;
    exported and converted, the stem stays a stock CONV_2D and the patch embedding reading
    its output becomes ours, verified bit-exact inside TFLM."""
    from tflm_vit.config import SubnetConfig
    from tflm_vit.converters.convert import convert
    from tflm_vit.export import export_tflite
    from tflm_vit.space import SearchSpace
    from tflm_vit.supernet.subnet import subnet_model_weights
    space = SearchSpace([16], [4], [16, 32], [1, 2], [2], [1.0, 2.0], stem=[0, 4, 8],
                        in_channels=1)
    net = ViTSupernet(space)
    for v in net.variables:  # non-trivial biases and betas
        v.assign(v + np.random.default_rng(1).normal(0, 0.05, v.shape).astype(np.float32))
    x = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16, 1)).astype(np.float32)
    for c in (SubnetConfig(16, 4, 32, 2, 2, 2.0, stem=8), SubnetConfig(16, 4, 16, 1, 2, 1.0,
                                                                      stem=4),
              SubnetConfig(16, 4, 16, 1, 2, 1.0)):
        y = net(x, encode_config(c, space)).numpy()
        for batch in (1, None):
            model = build_subnet_model(c, net.subnet_weights(c), 1, batch_size=batch)
            y2 = np.concatenate([model(x[i:i + 1]).numpy() for i in range(len(x))])
            np.testing.assert_allclose(y, y2, atol=2e-5, err_msg=c.short())
        back = subnet_model_weights(model, c)
        assert set(back) == set(net.subnet_weights(c))
        for k, v in net.subnet_weights(c).items():
            np.testing.assert_array_equal(back[k], v, err_msg=k)
    c = SubnetConfig(16, 4, 32, 2, 2, 2.0, stem=8)
    conversion = convert(export_tflite(net, c, x))
    stems = [left for left in conversion.left if "stem" in left.reason]
    assert len(stems) == 1 and stems[0].names == ("CONV_2D",)
    patch = [r for r in conversion.rewritten if r.kind == "patch_embedding"]
    assert len(patch) == 1 and patch[0].verified.startswith("bit-exact")
