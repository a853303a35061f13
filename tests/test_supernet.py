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
