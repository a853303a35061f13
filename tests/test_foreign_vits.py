"""ViTs our exporter did not write: keras.io-style models (keras.layers.MultiHeadAttention,
Dense(activation=gelu) with TFLite's builtin GELU op, a class token, extract_patches)
through `convert` and `plan`, in the wheel. Tiny models (16 px, 16 tokens, width 32, one
block) so each converts in seconds; bench/foreign_vits.py runs the full-size variants
trained on Fashion-MNIST and on the emulated M7."""

from __future__ import annotations

import json
import math
import pathlib
import re

import numpy as np
import pytest

from tflm_vit import model_zoo, runtime
from tflm_vit.converters import convert as conv
from tflm_vit.converters import model_io as mio
from tflm_vit.converters import patterns as pat
from tflm_vit.memory import plan_model
from tflm_vit.tflite_model import load_model
from tflm_vit.twins import gelu as gl
from tflm_vit.twins.fixed_point import quantize

REPO = pathlib.Path(__file__).resolve().parents[1]

TINY = dict(image=16, patch=4, dim=32, heads=2, blocks=1)
# What the README lists as staying stock ops after `convert`, per variant.
STAYS_STOCK = {"ADD", "MEAN"}
CLASS_TOKEN_OPS = {"CONCATENATION", "STRIDED_SLICE"}
EXTRACT_PATCHES_OPS = {"CONV_2D", "RESHAPE"}


def _keras(**kw):
    import keras
    keras.utils.set_random_seed(0)
    return model_zoo.keras_io_vit(**TINY, **kw)


@pytest.fixture(scope="module")
def variants():
    out = {}
    for kw in (dict(), dict(pool="class_token", gelu="tanh"),
               dict(patch_embedding="extract_patches")):
        model = _keras(**kw)
        out[tuple(sorted(kw.items()))] = (model, model_zoo.int8_tflite(model))
    return out


def _left(result) -> set[str]:
    return {n for lft in result.left for n in lft.names}


@pytest.mark.parametrize("key, allowed", [
    ((), STAYS_STOCK),
    ((("gelu", "tanh"), ("pool", "class_token")), STAYS_STOCK | CLASS_TOKEN_OPS),
    ((("patch_embedding", "extract_patches"),), STAYS_STOCK | EXTRACT_PATCHES_OPS)])
def test_keras_vit_converts_with_only_the_listed_stock_ops_left(variants, key, allowed):
    _, stock = variants[key]
    result = conv.convert(stock, keep_unmapped=True)
    counts = result.op_counts()
    assert counts.get("TV_ATTENTION") == 1 and counts.get("TV_MLP") == 1
    assert counts.get("TV_LAYERNORM") == 3
    assert _left(result) <= allowed, result.left
    assert all(g.verified.startswith("bit-exact") for g in result.rewritten)
    if "GELU" in {op.name for op in load_model(stock)[1].ops}:
        assert "builtin GELU" in result.baseline


def test_attention_roles_follow_the_data_flow_not_the_op_order(variants):
    """Keras computes the scores as (K Q^T)^T and folds 1/sqrt(key_dim) into the query
    projection: the projection the matcher calls "q" must carry the layer's query kernel
    times that scale, "k" the key kernel."""
    model, stock = variants[()]
    mha = next(layer for layer in model.layers if layer.__class__.__name__ == "MultiHeadAttention")
    _, info = load_model(stock)
    (match,) = [m for m in pat.find_patterns(info) if m.kind == pat.ATTENTION]
    editable = mio.read(stock)

    def weights(role):
        w = editable.subgraphs[0].operators[match.role(role)].inputs[1]
        return mio.dequantized_const(w)  # [out, in]

    def kernel(dense, scale=1.0):
        k = np.asarray(dense.kernel)  # [in, heads, key_dim]
        return (k.reshape(k.shape[0], -1) * scale).T

    scale = 1 / math.sqrt(TINY["dim"] // TINY["heads"])
    for role, want in (("q", kernel(mha._query_dense, scale)), ("k", kernel(mha._key_dense)),
                       ("v", kernel(mha._value_dense))):
        step = np.abs(want).max(axis=1, keepdims=True) / 127  # per-channel weight LSB
        assert np.all(np.abs(weights(role) - want) <= step * 0.51 + 1e-7), role
    assert "scale" not in dict(match.roles)  # folded: no MUL between the scores and SOFTMAX


def test_builtin_gelu_tanh_form_gets_the_tanh_table(variants):
    _, stock = variants[(("gelu", "tanh"), ("pool", "class_token"))]
    result = conv.convert(stock, keep_unmapped=True)
    (mlp,) = [op for g in result.rewritten for op in g.new_ops if op.custom_code == "TV_MLP"]
    table = mio.const(mlp.inputs[1])
    _, info = load_model(stock)
    (gelu,) = [op for op in info.ops if op.name == "GELU"]
    editable = mio.read(stock)
    x, y = (editable.subgraphs[0].tensors[t] for t in (gelu.inputs[0], gelu.outputs[0]))
    (sx, zx), (sy, zy) = mio.quant(x, "x"), mio.quant(y, "y")
    assert np.array_equal(table, gl.gelu_table(sx, zx, sy, zy, approximate=True))
    assert not np.array_equal(gl.gelu_table(sx, zx, sy, zy, approximate=True),
                              gl.gelu_table(sx, zx, sy, zy))


def test_converted_keras_vit_is_as_close_to_the_float_model_as_stock(variants):
    """On the same inputs, the converted model's logits are no further from the float
    Keras model's than the stock int8 model's (GELU run as a table in both), and its
    top-1 agrees with float at least as often."""
    model, stock = variants[()]
    result = conv.convert(stock, keep_unmapped=True)
    baseline, _ = conv.wheel_baseline(stock, load_model(stock)[1], conv.Settings())
    rng = np.random.default_rng(3)
    x = rng.standard_normal((24, *TINY_SHAPE)).astype(np.float32)
    want = model.predict(x, verbose=0)
    editable = mio.read(stock)
    (si, zi) = mio.quant(editable.subgraphs[0].inputs[0], "in")
    (so, zo) = mio.quant(editable.subgraphs[0].outputs[0], "out")
    xq = quantize(x, si, zi)
    err = {}
    for name, m in (("stock", baseline), ("ours", result.model)):
        got = (runtime.invoke(m, xq).reshape(len(x), -1).astype(np.float64) - zo) * so
        err[name] = (np.abs(got - want).mean(), (got.argmax(1) == want.argmax(1)).mean())
    assert err["ours"][0] <= err["stock"][0] * 1.1, err
    assert err["ours"][1] >= err["stock"][1] - 1 / len(x), err


TINY_SHAPE = (TINY["image"], TINY["image"], 1)


def test_converted_keras_vit_plans_and_runs_in_the_arena_given(variants):
    _, stock = variants[(("gelu", "tanh"), ("pool", "class_token"))]
    result = conv.convert(stock, keep_unmapped=True)
    planned = plan_model(result.model, target="wheel")
    x = np.random.default_rng(0).integers(-128, 128, (2, *TINY_SHAPE), dtype=np.int8)
    assert runtime.fits(planned.model, planned.arena_size)
    assert runtime.allocations(planned.model).total == planned.after.total
    assert np.array_equal(runtime.invoke(planned.model, x), runtime.invoke(result.model, x))
    baseline, _ = conv.wheel_baseline(stock, load_model(stock)[1], conv.Settings())
    assert planned.after.total < runtime.allocations(baseline).total


def _from_keras_model(model) -> bytes:
    """The TFLite docs' route: a model with a free batch through from_keras_model."""
    import tensorflow as tf
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = c.inference_output_type = tf.int8
    rng = np.random.default_rng(0)
    c.representative_dataset = lambda: (
        [rng.standard_normal((1, *TINY_SHAPE)).astype(np.float32)] for _ in range(8))
    return c.convert()


@pytest.fixture(scope="module")
def free_batch():
    """With non-zero biases, as training leaves them: the free-batch export then keeps
    each attention projection's bias as a separate ADD after the head split."""
    model = _keras(batch_size=None)
    rng = np.random.default_rng(2)
    for w in model.weights:
        if "bias" in w.path:
            w.assign(0.1 * rng.standard_normal(w.shape).astype(np.float32))
    return _from_keras_model(model)


def _tflite_outputs(model: bytes, x: np.ndarray) -> np.ndarray:
    """Outputs in TensorFlow Lite's own interpreter, which runs the free-batch model's
    shape ops (REDUCE_PROD) that TFLM lacks."""
    import tensorflow as tf
    interp = tf.lite.Interpreter(model_content=model)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    outs = []
    for img in x:
        interp.set_tensor(inp["index"], img[None])
        interp.invoke()
        outs.append(interp.get_tensor(out["index"]).copy())
    return np.concatenate(outs)


def test_a_free_batch_model_is_made_static_and_computes_the_same(free_batch):
    from tflm_vit.converters import static_batch
    editable = mio.read(free_batch)
    assert static_batch.is_dynamic(editable)
    folded = static_batch.make_static(editable)
    static = mio.build(editable)
    _, info = load_model(static)
    names = {op.name for op in info.ops}
    assert folded >= 10 and not names & {"SHAPE", "REDUCE_PROD", "PACK", "GATHER"}
    assert all(not t.is_dynamic for t in info.tensors)
    x = np.random.default_rng(1).integers(-128, 128, (3, *TINY_SHAPE), dtype=np.int8)
    assert np.array_equal(_tflite_outputs(static, x), _tflite_outputs(free_batch, x))


def test_folding_the_bias_adds_keeps_the_model_within_a_rounding_step(free_batch):
    from tflm_vit.converters import fold_bias, static_batch
    editable = mio.read(free_batch)
    static_batch.make_static(editable)
    static = mio.build(editable)
    adds = sum(op.name == "ADD" for op in load_model(static)[1].ops)
    n = fold_bias.fold_bias_adds(editable)  # Q, K, V at least
    folded = mio.build(editable)
    assert n >= 3 and sum(op.name == "ADD" for op in load_model(folded)[1].ops) == adds - n
    x = np.random.default_rng(1).integers(-128, 128, (16, *TINY_SHAPE), dtype=np.int8)
    want, got = _tflite_outputs(static, x), _tflite_outputs(folded, x)
    assert np.abs(want.astype(int) - got.astype(int)).max() <= FOLDED_BIAS_LSB
    assert (want.argmax(1) == got.argmax(1)).mean() >= 0.9


FOLDED_BIAS_LSB = 4  # at the logits, after every rounding difference has propagated


def test_convert_takes_a_free_batch_model_and_says_it_made_it_static(free_batch):
    result = conv.convert(free_batch, keep_unmapped=True)
    assert any("made static at batch 1" in note for note in result.notes)
    assert any("bias ADDs folded" in note for note in result.notes)
    counts = result.op_counts()
    assert counts.get("TV_ATTENTION") == 1 and counts.get("TV_MLP") == 1
    assert _left(result) <= STAYS_STOCK, result.left


def test_keras_hub_vit_converts_with_only_the_class_token_and_adds_left():
    import keras
    keras.utils.set_random_seed(0)
    stock = model_zoo.int8_tflite(model_zoo.keras_hub_vit(image=16, dim=32, heads=2,
                                                          blocks=1, mlp_dim=64))
    result = conv.convert(stock, keep_unmapped=True)
    counts = result.op_counts()
    assert counts.get("TV_ATTENTION") == 1 and counts.get("TV_MLP") == 1
    assert counts.get("TV_PATCH_EMBED") == 1
    assert _left(result) <= STAYS_STOCK | CLASS_TOKEN_OPS, result.left


# A tiny timm ViT as PyTorch's route writes it (tests/data/README.md says how it was
# made): committed, so the converter's PyTorch patterns are tested where no torch
# environment is (CI); the last test below remakes it where one is.
TIMM_TINY = pathlib.Path(__file__).parent / "data" / "timm_vit_tiny_int8.tflite"

@pytest.fixture(scope="module")
def timm_stock():
    return TIMM_TINY.read_bytes()


def _same_outputs(a: bytes, b: bytes) -> bool:
    """Two timm models give the same outputs, bit for bit, on seeded images (in the wheel,
    the builtin GELU as the verification's table op in both)."""
    x = np.random.default_rng(1).integers(-128, 128, (4, 1, 16, 16), dtype=np.int8)
    runs = [runtime.invoke(conv.wheel_baseline(m, load_model(m)[1], conv.Settings())[0], x)
            for m in (a, b)]
    return np.array_equal(*runs)


def test_a_timm_vit_through_litert_torch_converts_to_our_ops(timm_stock):
    # PyTorch's route (tflm_vit/torch_export.py, in a torch environment): the patch
    # embedding as a DEPTHWISE_CONV_2D over the one channel between NCHW transposes,
    # then an int8 -> int8 QUANTIZE to the class token's scale; LayerNorm as litert-torch
    # decomposes it (RESHAPEs between, no keep_dims), attention from one fused qkv
    # projection cut by SLICE with the scale's root on q and on k and the scores reshaped
    # around SOFTMAX, the builtin GELU in the MLP, the head; the final LayerNorm's trained
    # affine, a MUL and an ADD by per-channel constants that the class token's SLICE keeps
    # from the head, taken into that LayerNorm. What stays stock: the input's NCHW -> NHWC
    # RESHAPE, that QUANTIZE, the class token (CONCATENATION, the SLICE that takes it out)
    # and the ADDs; without --keep-unmapped the converter names them.
    from tflm_vit.errors import ConversionError
    stock_ops = [op.name for op in load_model(timm_stock)[1].ops]
    assert stock_ops[-4:] == ["MUL", "ADD", "SLICE", "FULLY_CONNECTED"]  # trained: an affine
    result = conv.convert(timm_stock, keep_unmapped=True)
    counts = result.op_counts()
    assert counts.get("TV_PATCH_EMBED") == 1
    assert counts.get("TV_LAYERNORM") == 3  # the block's two and the final one
    assert counts.get("TV_ATTENTION") == 1 and counts.get("TV_MLP") == 1
    assert any("fused qkv projections split" in note for note in result.notes)
    assert any("DEPTHWISE_CONV_2D made CONV_2D" in note for note in result.notes)
    assert any("chains that move no element" in note for note in result.notes)
    assert all(g.verified for g in result.rewritten)
    assert _left(result) == {"RESHAPE", "QUANTIZE", "CONCATENATION", "ADD", "SLICE"}
    assert result.top1_agreement_with_stock == 1.0
    with pytest.raises(ConversionError, match=r"op 0 \(RESHAPE\)"):
        conv.convert(timm_stock)


def test_pytorch_patch_layout_made_conv_and_reshape_changes_no_output(timm_stock):
    # converters/one_channel_depthwise.py and layout_chains.py: the DEPTHWISE_CONV_2D over
    # one channel as CONV_2D and TRANSPOSE -> RESHAPE -> TRANSPOSE as one RESHAPE compute
    # the model's own numbers, bit for bit (in the wheel, the builtin GELU as the
    # verification's table op in both); a TRANSPOSE that moves elements stays.
    from tflm_vit.converters import layout_chains, one_channel_depthwise
    editable = mio.read(timm_stock)
    assert one_channel_depthwise.depthwise_to_conv(editable) == 1
    assert layout_chains.collapse_layout_chains(editable) == 1
    canonical = mio.build(editable)
    before = [op.name for op in load_model(timm_stock)[1].ops]
    after = [op.name for op in load_model(canonical)[1].ops]
    assert after[:3] == ["RESHAPE", "CONV_2D", "RESHAPE"]
    assert before[:5] == ["RESHAPE", "DEPTHWISE_CONV_2D", "TRANSPOSE", "RESHAPE", "TRANSPOSE"]
    # the attention's head transposes move elements: they stay
    assert after.count("TRANSPOSE") == before.count("TRANSPOSE") - 2 > 0
    assert _same_outputs(timm_stock, canonical)


def test_splitting_a_fused_qkv_projection_changes_no_output(timm_stock):
    # converters/split_qkv.py: three FULLY_CONNECTEDs with the fused one's rows and output
    # quantisation compute the model's own numbers, bit for bit (run in the wheel with the
    # builtin GELU as the verification's table op, the same in both).
    from tflm_vit.converters import split_qkv
    editable = mio.read(timm_stock)
    assert split_qkv.split_fused_qkv(editable) == 1
    split = mio.build(editable)
    before = [op.name for op in load_model(timm_stock)[1].ops]
    after = [op.name for op in load_model(split)[1].ops]
    assert after.count("SLICE") == before.count("SLICE") - 3  # (the class token's stays)
    assert after.count("FULLY_CONNECTED") == before.count("FULLY_CONNECTED") + 2
    assert _same_outputs(timm_stock, split)


def test_the_committed_timm_model_is_what_the_pytorch_route_makes(timm_stock):
    # Remaking it needs torch, timm, litert-torch and ai-edge-quantizer (an optional 5 GB
    # environment, TFLM_VIT_TORCH_PYTHON), so bench/foreign_vits.py remakes it where they
    # are and commits what it made: the committed file is that model, op for op.
    doc = json.loads((REPO / "bench/results/foreign_vits.json").read_text())
    assert doc["timm_fixture_ops"] == model_zoo.op_signature(timm_stock)


@pytest.mark.parametrize("samples, what", [
    (np.zeros((2, 5, 5, 1), np.int8), "int8 (2, 5, 5, 1)"),
    (np.zeros((2, 16, 16, 1), np.float32), "float32 (2, 16, 16, 1)"),
    (np.zeros((0, 16, 16, 1), np.int8), "int8 (0, 16, 16, 1)")])
def test_convert_names_samples_that_do_not_fit_the_model(variants, samples, what):
    from tflm_vit.errors import ConversionError
    _, stock = variants[()]
    with pytest.raises(ConversionError, match=r"samples must be int8 images of shape "
                                              r"\(n, 16, 16, 1\).*got " + re.escape(what)):
        conv.convert(stock, samples=samples, keep_unmapped=True)


def test_convert_of_a_long_string_does_not_print_it_as_a_path():
    from tflm_vit.errors import ModelFileError
    with pytest.raises(ModelFileError) as e:
        conv.convert("not a model " * 10_000)
    assert len(str(e.value)) < 200 and "120,000-character string" in str(e.value)
