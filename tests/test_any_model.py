"""Any int8 model a TFLM user brings (tflm_vit.model_zoo): the memory model's arena is
TFLM's to the byte for the builtins it knows; for the others `analyze` and `plan`
measure on the wheel and refuse on a Cortex-M; models TFLM would abort on, models with
two subgraphs or int16 activations are one-line errors. (On the emulated M4/M7:
tests/test_firmware.py; every zoo model at full size: bench/any_model.py.)"""

import subprocess
import sys

import numpy as np
import pytest

from tflm_vit import model_zoo, runtime
from tflm_vit.errors import ModelFileError
from tflm_vit.memory import plan_model, predict
from tflm_vit.tflite_model import parse_model


@pytest.fixture(scope="module")
def sampler():
    return model_zoo.build("op_sampler")


def _cli(*args):
    return subprocess.run([sys.executable, "-P", "-m", "tflm_vit.cli", *map(str, args)],
                          capture_output=True, text=True, cwd="/")


def test_every_known_builtin_is_exact_on_the_wheel_stock_and_planned(sampler):
    from tflm_vit.memory.tail import KNOWN_BUILTINS
    ops = {op.name for op in parse_model(sampler).ops}
    assert len(ops & KNOWN_BUILTINS) >= 20 and predict(sampler).unmodelled == []
    assert predict(sampler).total == runtime.allocations(sampler).total
    planned = plan_model(sampler)
    assert planned.after.total == runtime.allocations(planned.model).total
    assert planned.after.head <= planned.before.head
    x = np.random.default_rng(0).integers(-128, 128, (1, 16, 16, 8), dtype=np.int8)
    assert np.array_equal(runtime.invoke(sampler, x), runtime.invoke(planned.model, x))


@pytest.mark.parametrize("name,kw", [("ds_cnn", {"scale": 0.25}),
                                     ("resnet8", {"scale": 0.25})])
def test_small_mlperf_tiny_models_are_exact_on_the_wheel(name, kw):
    data = model_zoo.build(name, **kw)
    assert predict(data).total == runtime.allocations(data).total


def test_a_head_light_model_gets_the_arena_its_prepare_phase_needs():
    """An all-dense model holds little but weights: TFLM records 17,328 bytes, but while
    its 640-channel FULLY_CONNECTED prepares, the tail plus that op's temporary tensors
    (a per-channel zero-point array each) need 19,360 (below that the wheel fails or
    crashes). The arena we give covers that phase, erring high by at most 32 bytes."""
    data = model_zoo.build("autoencoder")
    planned = plan_model(data, target="wheel")
    give = planned.arena_size
    assert give > planned.after.total == runtime.allocations(planned.model).total
    assert runtime.fits(planned.model, give)
    assert give - runtime.smallest_arena(planned.model, give) <= 32


def _tiny(layer_fn, **convert):
    import keras
    keras.utils.set_random_seed(0)
    x = inp = keras.Input((8, 8, 4), batch_size=1)
    x = layer_fn(x)
    return model_zoo.int8_tflite(keras.Model(inp, x), **convert)


def test_an_unknown_op_is_measured_on_the_wheel_and_refused_on_a_cortex_m(tmp_path):
    import keras
    L = keras.layers
    path = tmp_path / "leaky.tflite"
    path.write_bytes(_tiny(lambda x: L.Dense(4)(L.Flatten()(L.LeakyReLU(0.1)(L.Conv2D(8, 3)(x))))))
    measured = runtime.allocations(path.read_bytes()).total
    proc = _cli("analyze", path, "--no-ops")
    assert proc.returncode == 0
    assert (f"arena to give TFLM on wheel: {measured:,} bytes (measured: the memory model "
            "does not know LEAKY_RELU)") in proc.stdout
    for cmd in (["analyze", path], ["plan", path, "-o", tmp_path / "p.tflite"]):
        proc = _cli(*cmd, "--target", "cortex-m")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1].endswith(
            "the memory model does not know the persistent allocations of LEAKY_RELU on "
            "cortex-m, so it gives no arena for this model there (on the wheel, `tflm-vit "
            "analyze` and `plan` measure it instead)")
    assert not (tmp_path / "p.tflite").exists()
    proc = _cli("plan", path, "-o", tmp_path / "w.tflite")
    assert proc.returncode == 0
    give = int(proc.stdout.split("give TFLM an arena of ")[1].split()[0].replace(",", ""))
    assert give == runtime.allocations((tmp_path / "w.tflite").read_bytes()).total


def test_a_softmax_tflm_would_abort_on_is_refused_before_the_wheel_sees_it(tmp_path):
    import keras
    L = keras.layers
    dense = L.Dense(10, kernel_initializer=keras.initializers.RandomNormal(stddev=1e-10),
                    bias_initializer="zeros")
    path = tmp_path / "tiny_logits.tflite"
    path.write_bytes(_tiny(lambda x: L.Softmax()(dense(L.Flatten()(x)))))
    for cmd in (["analyze", path], ["plan", path, "-o", tmp_path / "p.tflite"]):
        proc = _cli(*cmd)
        assert proc.returncode == 2, proc.stderr[-500:]  # not -6 (SIGABRT)
        line = proc.stderr.strip().splitlines()[-1]
        assert "(SOFTMAX): input scale" in line and "TFLM's Prepare aborts" in line
    with pytest.raises(ModelFileError, match="SOFTMAX"):
        runtime.make_interpreter(path.read_bytes())


def test_two_subgraphs_and_int16_activations_are_refused(tmp_path, sampler):
    import copy

    import keras
    import tensorflow as tf
    from tflite_micro.tensorflow.lite.micro.compression import model_editor
    L = keras.layers
    model = model_editor.read(sampler)
    model.subgraphs.append(copy.deepcopy(model.subgraphs[0]))
    with pytest.raises(ModelFileError, match="the model has 2 subgraphs"):
        predict(bytes(model.build()))

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 4), batch_size=1)
    net = keras.Model(inp, L.Dense(4)(L.Flatten()(L.Conv2D(8, 3)(inp))))
    conv = tf.lite.TFLiteConverter.from_keras_model(net)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    conv.representative_dataset = lambda: ([np.ones((1, 8, 8, 4), np.float32)] for _ in range(2))
    with pytest.raises(ModelFileError, match="int16 activations"):
        predict(bytes(conv.convert()))


def _chained_ops(planned):
    """The ops whose output shares its input's bytes under the plan."""
    info = parse_model(planned.model)
    producer = {t: op.name for op in info.ops for t in op.outputs}
    return [[producer.get(t, "input") for t in chain] for chain in planned.plan.chains]


def test_elementwise_ops_write_over_their_inputs_and_compute_the_same(sampler):
    """Stock elementwise ops run in place (memory/aliasing.py ELEMENTWISE): RELU, RELU6,
    HARD_SWISH, MUL, TANH and RESHAPE in the sampler (on the M4/M7 too:
    tests/test_firmware.py), QUANTIZE between two int8 scales and LOGISTIC in a graph
    no Keras layer gives, each over an input that dies there; the planned models
    compute what the unplanned ones do."""
    planned = plan_model(sampler)
    chained = {name for chain in _chained_ops(planned) for name in chain[1:]}
    assert {"RELU", "RELU6", "HARD_SWISH", "MUL", "TANH", "RESHAPE"} <= chained

    from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    int8, op = schema.TensorType.INT8, schema.BuiltinOperator
    t = lambda name, scale, zero=0: me.Tensor(  # noqa: E731
        (1, 256), int8, quantization=me.Quantization(scale, zero), name=name)
    x, r, s = t("x", 0.05), t("requantized", 0.1, 3), t("sigmoid", 1 / 256, -128)
    f = me.Tensor((1, 256), schema.TensorType.FLOAT32, name="float")
    y = t("y", 1 / 256, -128)
    graph = me.Model(subgraphs=[me.Subgraph(
        tensors=[x, r, s, f, y], inputs=[x], outputs=[y],
        operators=[me.Operator(op.QUANTIZE, [x], [r]), me.Operator(op.LOGISTIC, [r], [s]),
                   me.Operator(op.DEQUANTIZE, [s], [f]), me.Operator(op.QUANTIZE, [f], [y])])])
    data = bytes(graph.build())
    planned = plan_model(data)
    # float -> int8 and int8 -> float change the bytes: those keep their own.
    assert _chained_ops(planned) == [["input", "QUANTIZE", "LOGISTIC"]]
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    outputs = []
    for model in (data, planned.model):
        interp, _ = runtime.make_interpreter(model)
        interp.set_input(x, 0)
        interp.invoke()
        outputs.append(interp.get_output(0).copy())
    assert np.array_equal(*outputs) and len(np.unique(outputs[0])) > 50


def test_mobilenet_v3_plans_below_tflm_and_computes_the_same():
    """MobileNetV3's HARD_SWISH after each convolution and its squeeze-excite MULs run
    in place: the plan is below TFLM's own, predicted to the byte."""
    data = model_zoo.build("mobilenet_v3_small_0.75_96", resolution=32, alpha=0.75)
    planned = plan_model(data, target="wheel")
    assert planned.after.total == runtime.allocations(planned.model).total
    assert planned.after.total < runtime.allocations(data).total
    assert any("HARD_SWISH" in chain[1:] for chain in _chained_ops(planned))
    x = np.random.default_rng(0).integers(-128, 128, (1, 32, 32, 3), dtype=np.int8)
    assert np.array_equal(runtime.invoke(data, x), runtime.invoke(planned.model, x))


def test_a_plan_is_never_worse_than_tflms_own(sampler):
    """Taking every overwrite fixes chains; TFLM's own placement stays a candidate."""
    from tflm_vit.memory.planner import plan, plan_tflm
    info = parse_model(sampler)
    assert plan(info, exact=False).head <= plan_tflm(info).head == predict(sampler).head
