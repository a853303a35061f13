"""Every subnet exports to a static int8 model that stock TFLM runs and that agrees with
its float Keras model; the export's op pattern is the documented one."""

import numpy as np
import pytest

from tflm_vit import evaluate, runtime
from tflm_vit.converters import count_patterns, find_patterns, unmatched_ops
from tflm_vit.errors import ConfigError, ExportError
from tflm_vit.export import MAX_RANK, export_tflite, float_subnet_model, prepare_images
from tflm_vit.space import DEFAULT_SPACE, REFERENCE_CONFIGS, REFERENCE_SPACE
from tflm_vit.supernet import ViTSupernet
from tflm_vit.tflite_model import parse_model

N_EVAL = 60  # test images per subnet
RANDOM_SUBNETS = 10  # each export and evaluation costs seconds of every CI run


def _subnets():
    rng = np.random.default_rng(2026)
    return ([("largest", DEFAULT_SPACE.largest()), ("smallest", DEFAULT_SPACE.smallest())]
            + [(f"random{i}", DEFAULT_SPACE.sample(rng)) for i in range(RANDOM_SUBNETS)])


def _check_pattern(info, config):
    matches = find_patterns(info)
    counts = count_patterns(matches)
    assert unmatched_ops(info, matches) == []
    depth = config.depth
    assert counts.get("patch_embedding") == 1
    assert counts.get("layernorm") == 2 * depth + 1
    assert counts.get("attention") == depth
    assert counts.get("gelu") == depth
    low_rank = 0 if config.rank_ratio >= 1.0 else 2 * depth
    assert counts.get("low_rank_linear", 0) == low_rank
    assert counts.get("linear") == 2 * depth - low_rank + 1  # + the classifier
    assert counts.get("residual_add") == 2 * depth
    assert counts.get("mean_pool") == 1


@pytest.fixture(scope="module")
def results(trained_supernet, digits):
    out = []
    for name, config in _subnets():
        model = export_tflite(trained_supernet, config, digits.x_train[:64])
        info = parse_model(model)
        x = prepare_images(digits.x_test[:N_EVAL], config.resolution)
        float_logits = float_subnet_model(trained_supernet, config).predict(
            x, batch_size=1, verbose=0)
        q, scale, zp = evaluate.run_int8(model, x)
        agree = evaluate.compare(float_logits, q, scale, zp, digits.y_test[:N_EVAL])
        out.append((name, config, info, agree))
    print("\nsubnet  config  top1-agreement  max/mean error (steps)  float/int8 acc")
    for name, config, _, a in out:
        print(f"{name:9s} {config.short():42s} {a.top1_agreement:.3f}  "
              f"{a.max_error_steps:3d} / {a.mean_error_steps:.2f}  "
              f"{a.float_accuracy:.3f} / {a.int8_accuracy:.3f}")
    return out


def test_every_subnet_is_static_int8_within_4d(results):
    for name, config, info, _ in results:
        inp = info.tensors[info.inputs[0]]
        assert inp.dtype == "INT8" and inp.shape == (1, config.resolution,
                                                     config.resolution, 3), name
        assert info.tensors[info.outputs[0]].dtype == "INT8"
        assert all(len(t.shape) <= MAX_RANK and not t.is_dynamic for t in info.tensors)
        assert "GELU" not in info.op_counts() and "REDUCE_PROD" not in info.op_counts()


def test_every_subnet_follows_the_documented_op_pattern(results):
    for name, config, info, _ in results:
        _check_pattern(info, config)


def test_every_subnet_agrees_with_its_float_model(results):
    agreements = [a.top1_agreement for *_, a in results]
    # int8 TFLM (with x*sigmoid(1.702x) for GELU) vs float Keras (exact GELU).
    assert min(agreements) >= 0.85, agreements
    assert np.mean(agreements) >= 0.93, agreements
    for name, _, _, a in results:
        assert a.mean_error_steps <= 6.0, (name, a)


@pytest.mark.parametrize("name", ["R0", "R1", "R2"])
def test_reference_configs_export_and_run_on_stock_tflm(name):
    config = REFERENCE_CONFIGS[name]
    net = ViTSupernet(REFERENCE_SPACE)
    rng = np.random.default_rng(0)
    rep = rng.uniform(-1, 1, (4, config.resolution, config.resolution, 3)).astype(np.float32)
    model = export_tflite(net, config, rep)
    info = parse_model(model)
    _check_pattern(info, config)
    x = rep[:2]
    q, scale, zp = evaluate.run_int8(model, x)
    float_logits = float_subnet_model(net, config).predict(x, batch_size=1, verbose=0)
    assert evaluate.compare(float_logits, q, scale, zp).mean_error_steps <= 6.0
    alloc = runtime.allocations(model)
    assert alloc.total == alloc.head + alloc.tail > 0


def test_export_rejects_bad_input(trained_supernet):
    from tflm_vit.config import SubnetConfig
    with pytest.raises(ConfigError, match="embed_dim"):
        export_tflite(trained_supernet, SubnetConfig(32, 4, 40, 1, 2, 1.0),
                      np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(ExportError, match="channels"):
        export_tflite(trained_supernet, DEFAULT_SPACE.smallest(),
                      np.zeros((2, 32, 32, 1), np.float32))
    with pytest.raises(ExportError, match="non-empty NHWC"):
        export_tflite(trained_supernet, DEFAULT_SPACE.smallest(), np.zeros((0, 32, 32, 3)))
