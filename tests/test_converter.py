"""The converter on subnets of a trained supernet: every custom op runs inside the
tflite-micro interpreter and equals its NumPy reference bit for bit; the converted
model agrees with the float model; LayerNorm and GELU stay within 1 LSB of
float-then-quantise; bad models and op data give errors that name the problem."""

import ctypes

import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflm_vit import evaluate, runtime, op_library
from tflm_vit.config import SubnetConfig
from tflm_vit.converters.convert import convert
from tflm_vit.converters.verify import op_errors
from tflm_vit.errors import ConversionError, CustomOpError
from tflm_vit.export import export_tflite, float_subnet_model, prepare_images

CONFIGS = {
    "largest": None, "smallest": None,
    "low_rank_2heads": SubnetConfig(resolution=32, patch_size=8, embed_dim=48, depth=2,
                                    num_heads=[2, 4], mlp_ratio=[2.0, 1.0], rank_ratio=0.5),
    "mixed": SubnetConfig(resolution=24, patch_size=4, embed_dim=32, depth=2, num_heads=[1, 2],
                          mlp_ratio=[1.0, 2.0], rank_ratio=0.75),
}


@pytest.fixture(scope="module")
def converted(trained_supernet, digits):
    out = {}
    space = trained_supernet.space
    for name, config in CONFIGS.items():
        config = config or (space.largest() if name == "largest" else space.smallest())
        model = export_tflite(trained_supernet, config, digits.x_train)
        x = prepare_images(digits.x_test, config.resolution)
        scale, zp = runtime.quantization(runtime.make_interpreter(model)[0].get_input_details(0))
        samples = evaluate.quantize(x[:4], scale, zp)
        result = convert(model, samples=samples)
        float_logits = float_subnet_model(trained_supernet, config).predict(
            x, batch_size=1, verbose=0)
        q, s, z = evaluate.run_int8(result.model, x)
        agreement = evaluate.compare(float_logits, q, s, z, digits.y_test)
        stock = evaluate.compare(float_logits, *evaluate.run_int8(model, x), digits.y_test)
        out[name] = (model, result, (agreement, stock), evaluate.quantize(x[:24], scale, zp))
    return out


def test_every_op_is_rewritten_and_bit_exact_inside_tflm(converted):
    for name, (_, result, _, _) in converted.items():
        counts = result.op_counts()
        assert counts["TV_LAYERNORM"] >= 2 and counts["TV_ATTENTION"] >= 1, name
        assert counts["TV_MLP"] >= 1 and counts["TV_PATCH_EMBED"] == 1, name
        assert all(g.verified.startswith("bit-exact") for g in result.rewritten), name
        assert {l.names[0] for l in result.left} <= {"ADD", "MEAN"}, name


def test_converted_model_agrees_with_float(converted):
    # The claim is that our integer ops lose nothing against stock int8. It is checked on
    # the statistics that measure fidelity rather than on chance: the logits' mean
    # distance from float in output steps (averaged over every logit of 360 images) is
    # within stock's plus 10 %, and test accuracy within 1.5 points of stock's. Top-1
    # agreement with float is not compared with stock's: on barely trained subnets
    # (0.4-0.75 top-1) many logits are near ties that any rounding flips either way
    # (seen: ours 0.944 vs stock 0.961 agreement while ours was closer to float, 0.84
    # vs 1.06 steps). Absolute agreement floors guard against both being broken: the
    # trained largest subnet (~0.9 top-1 after 250 steps) >= 0.97, the others >= 0.90.
    for name, (_, _, (agreement, stock), _) in converted.items():
        assert agreement.mean_error_steps <= 1.1 * stock.mean_error_steps, (name, agreement, stock)
        assert agreement.int8_accuracy >= stock.int8_accuracy - 0.015, (name, agreement, stock)
        assert agreement.top1_agreement >= (0.97 if name == "largest" else 0.90), (name, agreement)


def test_layernorm_and_gelu_within_one_lsb_of_float_then_quantise(converted):
    model, _, _, images = converted["low_rank_2heads"]
    result = convert(model, fuse_mlp=False, samples=images[:2])
    errors = op_errors(result, images)
    for kind in ("layernorm", "gelu"):
        assert np.mean(errors[kind] <= 1) >= 0.99, (kind, np.bincount(errors[kind]))
    assert errors["gelu"].max() == 0  # the table is float-then-quantise itself


def test_unfused_and_shift_gelu_conversions_verify(converted):
    model, _, _, images = converted["low_rank_2heads"]
    result = convert(model, fuse_mlp=False, gelu="shift", overwrite_image=False,
                     samples=images[:3])
    counts = result.op_counts()
    assert counts["TV_GELU"] == 2 and counts["TV_LOW_RANK_LINEAR"] >= 1
    assert "TV_MLP" not in counts


def _edit(model_bytes, fn):
    m = me.read(model_bytes)
    fn(m, m.subgraphs[0])
    return bytes(m.build())


def _retype(t):
    """int32 [2, n] -> int8 [2, 4n]: same bytes, wrong type for the op."""
    t.dtype = schema.TensorType.INT8
    t.shape = (2, 4 * t.shape[1])


def _rezero(t):
    """Moves a per-tensor zero point by one (towards zero's side that stays in int8)."""
    zp = int(np_scalar(t.quantization.zero_points))
    t.quantization = me.Quantization(t.quantization.scales, zp + 1 if zp < 127 else zp - 1)


def np_scalar(v):
    return np.asarray(v).reshape(-1)[0]


def _first(sg, code):
    return next(op for op in sg.operators if op.custom_code == code)


def test_bad_custom_data_is_named_by_the_op(converted):
    _, result, _, _ = converted["smallest"]
    good = result.model
    cases = {
        "TV_LINEAR: custom options are not a valid FlexBuffers buffer": lambda m, sg: setattr(
            _first(sg, "TV_LINEAR")._fb, "customOptions", _first(sg, "TV_LINEAR")._fb.customOptions[:10]),
        "TV_LINEAR: custom options are for another op: op": lambda m, sg: setattr(
            _first(sg, "TV_LINEAR")._fb, "customOptions", list(_first(sg, "TV_GELU" if any(
                o.custom_code == "TV_GELU" for o in sg.operators) else "TV_LAYERNORM")._fb.customOptions)),
        "TV_LINEAR: tensor 'linear requantisation' must be int32": lambda m, sg: _retype(
            _first(sg, "TV_LINEAR").inputs[2]),
        "TV_LAYERNORM: tensor 'bias' must have rank 1, got rank 2": lambda m, sg: setattr(
            _first(sg, "TV_LAYERNORM").inputs[2], "shape", (1,) + tuple(_first(sg, "TV_LAYERNORM").inputs[2].shape)),
        "TV_LINEAR: tensor 'output' must be int8, got another type": lambda m, sg: setattr(
            _first(sg, "TV_ATTENTION").inputs[0], "dtype", schema.TensorType.INT16),
        # The quantization of every activation is checked against the op's options (by
        # the first op in Prepare order that touches the edited tensor; each zero point
        # is moved by one from whatever calibration gave it).
        r"TV_LAYERNORM: tensor 'output' has zero point -?\d+, the op's options were made":
            lambda m, sg: _rezero(_first(sg, "TV_LINEAR").inputs[0]),
        r"TV_(LOW_RANK_)?LINEAR: tensor 'output' has zero point -?\d+, the op's options":
            lambda m, sg: _rezero(_first(sg, "TV_ATTENTION").inputs[1]),
        r"TV_PATCH_EMBED: tensor 'image' has zero point -?\d+, the op's options were made":
            lambda m, sg: _rezero(_first(sg, "TV_PATCH_EMBED").inputs[0]),
    }
    for message, edit in cases.items():
        bad = _edit(good, edit)
        with pytest.raises(CustomOpError, match=message):
            runtime.make_interpreter(bad)


def test_op_outside_any_pattern_is_refused_by_name(converted):
    model, _, _, _ = converted["smallest"]

    def to_sum(m, sg):
        op = next(o for o in reversed(sg.operators) if o.opcode == schema.BuiltinOperator.MEAN)
        op.opcode = schema.BuiltinOperator.SUM
    bad = _edit(model, to_sum)
    with pytest.raises(ConversionError, match=r"cannot map op \d+ \(SUM\)"):
        convert(bad)
    result = convert(bad, keep_unmapped=True)
    assert any(l.names == ("SUM",) for l in result.left)


def test_registerer_refuses_what_is_not_the_wheels_resolver():
    op_library.load()
    fn = ctypes.CDLL(str(op_library.library_path())).TflmVitRegisterOps
    fn.restype, fn.argtypes = ctypes.c_bool, [ctypes.c_void_p]
    assert fn(None) is False
    fake = (ctypes.c_uint8 * 16384)()
    ctypes.memmove(fake, ctypes.byref(ctypes.c_void_p(ctypes.addressof(fake))), 8)
    assert fn(ctypes.addressof(fake)) is False  # a vptr that names no resolver vtable


def test_cli_convert(converted, tmp_path, capsys):
    from tflm_vit.cli import main
    model, _, _, _ = converted["smallest"]
    src = tmp_path / "in.tflite"
    src.write_bytes(model)
    assert main(["convert", str(src), "-o", str(tmp_path / "out.tflite")]) == 0
    text = capsys.readouterr().out
    assert "TV_LAYERNORM" in text and "bit-exact" in text and "left as they are" in text
    interp, _ = runtime.make_interpreter(str(tmp_path / "out.tflite"))
    assert main(["convert", str(tmp_path / "missing.tflite"), "-o", str(tmp_path / "x")]) == 2


def test_layernorm_parameters_read_off_the_graph_match_the_keras_weights(converted,
                                                                         trained_supernet):
    """gamma, beta and eps as the converter extracted them from the stock int8 graph,
    against the trained weights they were exported from (to within the int8 constant's
    quantization step), LayerNorm by LayerNorm in graph order."""
    from tflm_vit.supernet.layers import LN_EPSILON
    space = trained_supernet.space
    for name, (_, result, _, _) in converted.items():
        config = CONFIGS[name] or (space.largest() if name == "largest" else space.smallest())
        weights = trained_supernet.subnet_weights(config)
        keys = [f"block{i}/norm{k}" for i in range(config.depth) for k in (1, 2)] + ["norm"]
        extracted = [op.extracted for g in result.rewritten for op in g.new_ops
                     if op.custom_code == "TV_LAYERNORM"]
        assert len(extracted) == len(keys), name
        for key, got in zip(keys, extracted):
            for part in ("gamma", "beta"):
                want = weights[f"{key}/{part}"]
                step = max(np.abs(want).max() / 127, 1e-6)
                np.testing.assert_allclose(got[part], want, atol=step, err_msg=f"{name} {key}")
            assert got["eps"] == pytest.approx(LN_EPSILON, rel=0.05), (name, key)


def test_each_op_alone_is_within_its_bound_of_the_stock_ops(converted):
    # Fed the stock model's own values at its inputs (real test images; the conversion
    # checked each against its bound), every kind was compared; the linear maps and the
    # patch embedding are bit-exact with TFLite's FULLY_CONNECTED / CONV_2D.
    seen = {}
    for name, (_, result, _, _) in converted.items():
        for g in result.rewritten:
            for kind, lsb in g.isolated_lsb.items():
                seen[kind] = max(seen.get(kind, 0), lsb)
    assert {"TV_PATCH_EMBED", "TV_LINEAR", "TV_LAYERNORM", "TV_ATTENTION", "TV_MLP"} <= set(seen)
    assert seen["TV_LINEAR"] == 0 and seen["TV_PATCH_EMBED"] == 0


def test_an_op_beyond_its_stock_bound_fails_the_conversion(converted, monkeypatch):
    from tflm_vit.converters import verify
    model, _, _, samples = converted["largest"]
    monkeypatch.setitem(verify.STOCK_LSB_BOUND, "TV_ATTENTION", -1)
    with pytest.raises(ConversionError, match=r"TV_ATTENTION \(replacing ops \[.*\]\) differs "
                       r"from the stock ops it replaces, on the same inputs, by -?\d+ LSB more "
                       r"than stock differs from float, above its bound of -1 LSB"):
        convert(model, samples=samples[:2])
