"""Bad or boundary input through the CLI: each a one-line error and exit 2, never a
traceback, a silent default or a half-written output."""

import subprocess
import types

import pytest

from tflm_vit import runtime
from tflm_vit.cli import main
from tflm_vit.errors import TflmVitError
from tflm_vit.units import parse_bytes


@pytest.fixture(scope="module")
def r0_path(exported_r0, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "r0.tflite"
    path.write_bytes(exported_r0)
    return path


def _error(capsys, *argv) -> str:
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_sqrt_iterations_zero_is_refused_not_defaulted(r0_path, tmp_path, capsys):
    line = _error(capsys, "convert", r0_path, "-o", tmp_path / "c.tflite", "--sqrt-iterations", 0)
    assert line == "tflm-vit convert: error: sqrt_iterations must be in [1, 64], got 0"
    assert not (tmp_path / "c.tflite").exists()


@pytest.mark.parametrize("limit", ["0", "-1", "nan"])
def test_plan_time_limit_must_be_positive(r0_path, tmp_path, capsys, limit):
    line = _error(capsys, "plan", r0_path, "-o", tmp_path / "p.tflite", "--time-limit", limit)
    assert line == f"tflm-vit plan: error: --time-limit must be > 0 seconds, got {float(limit):g}"
    assert not (tmp_path / "p.tflite").exists()


@pytest.mark.parametrize("png", ["m.tflite", "t.txt", "timeline"])
def test_png_must_be_a_png_path(r0_path, tmp_path, capsys, png):
    line = _error(capsys, "analyze", r0_path, "--png", tmp_path / png)
    assert line.endswith("the timeline is a PNG image; give a path ending in .png")
    assert not (tmp_path / png).exists() and not (tmp_path / (png + ".png")).exists()


def test_budgets_take_units(r0_path, tmp_path, capsys):
    assert parse_bytes("320KB") == parse_bytes("320 KiB") == 327680
    assert parse_bytes("1MB") == 1 << 20 and parse_bytes("4096") == 4096
    for bad in ("12XB", "-5KB", "0", "1.5B", ""):
        with pytest.raises(ValueError, match="byte size|positive whole number"):
            parse_bytes(bad)
    converted = tmp_path / "c.tflite"
    assert main(["convert", str(r0_path), "-o", str(converted), "--no-verify"]) == 0
    assert main(["plan", str(converted), "-o", str(tmp_path / "p.tflite"),
                 "--budget", "320KB", "--target", "cortex-m"]) == 0
    out = capsys.readouterr().out
    assert "give TFLM an arena of 21,888 bytes on cortex-m" in out
    line = _error(capsys, "plan", converted, "-o", tmp_path / "p2.tflite", "--budget", "20KB",
                  "--target", "cortex-m")
    assert "over the budget of 20,480 bytes" in line and "on cortex-m" in line
    assert not (tmp_path / "p2.tflite").exists()
    with pytest.raises(SystemExit) as e:
        main(["plan", str(converted), "-o", str(tmp_path / "p3.tflite"), "--budget", "12XB"])
    assert e.value.code == 2
    assert "'12XB' is not a byte size" in capsys.readouterr().err


def test_kernels_without_a_cortex_m_target_is_an_error(r0_path, tmp_path, capsys):
    line = _error(capsys, "plan", r0_path, "-o", tmp_path / "p.tflite", "--kernels", "cmsis_nn")
    assert line == "tflm-vit plan: error: --kernels applies to --target cortex-m only"


def test_failed_demo_leaves_no_output_folder(tmp_path, capsys):
    out = tmp_path / "demo_out"
    line = _error(capsys, "demo", "--data", tmp_path / "no_such_data", "--out", out,
                  "--steps", 1)
    assert "no_such_data" in line
    assert not out.exists()


def test_fits_does_not_mistake_another_failure_for_too_small(exported_r0, monkeypatch):
    def crashed(*args, **kwargs):
        return types.SimpleNamespace(returncode=1, stdout="", stderr="ImportError: boom")
    monkeypatch.setattr(subprocess, "run", crashed)
    with pytest.raises(TflmVitError, match=r"failed for another reason \(exit 1\)"):
        runtime.fits(exported_r0, 1 << 20)


def test_an_unknown_custom_op_is_named_alone(r0_path, tmp_path):
    # A converted model with one op nobody provides: only that op is named, not ours.
    from tflite_micro.tensorflow.lite.micro.compression import model_editor
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from tflm_vit.converters.convert import convert
    from tflm_vit.errors import UnsupportedOpError
    model = model_editor.read(convert(r0_path, verify=False).model)
    op = model.subgraphs[0].operators[1]
    op.opcode, op.custom_code, op.opcode_index = schema.BuiltinOperator.CUSTOM, "ACME_OP", None
    with pytest.raises(UnsupportedOpError) as e:
        runtime.make_interpreter(bytes(model.build()))
    assert str(e.value) == "op ACME_OP (operators [1]) is not resolvable by the tflite-micro runtime"


def _tiny_tflite(dynamic=False, int16=False, tmp_path=None):
    """A one-layer Keras model as float32 TFLite (a free token count if asked: a free
    batch alone `convert` fixes at 1), or int16x8."""
    import numpy as np
    import tensorflow as tf
    inp = tf.keras.Input((None, 8) if dynamic else (8,), batch_size=1)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(4)(inp))
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if int16:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([np.ones((1, 8), np.float32)] for _ in range(4))
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int16
    return conv.convert()


@pytest.mark.parametrize("kind,message", [
    ("float", "the model is float32 (input tensor"),
    ("int16", "the model is int16x8 (input tensor"),
    ("dynamic", "has free dimensions besides the batch [1, -1, 8]"),
])
def test_convert_names_why_a_model_is_not_convertible(tmp_path, capsys, kind, message):
    path = tmp_path / "m.tflite"
    path.write_bytes(_tiny_tflite(dynamic=kind == "dynamic", int16=kind == "int16"))
    line = _error(capsys, "convert", path, "-o", tmp_path / "c.tflite")
    assert message in line


def test_convert_on_a_converted_model_says_so(r0_path, tmp_path, capsys):
    converted = tmp_path / "c.tflite"
    assert main(["convert", str(r0_path), "-o", str(converted), "--no-verify"]) == 0
    capsys.readouterr()
    line = _error(capsys, "convert", converted, "-o", tmp_path / "c2.tflite")
    assert line.startswith("tflm-vit convert: error: the model is already converted (it has ")
    assert len(line) < 200


def test_a_directory_as_the_model_is_named_as_one(tmp_path, capsys):
    line = _error(capsys, "analyze", tmp_path)
    assert line == f"tflm-vit analyze: error: {tmp_path}: is a directory, not a .tflite file"


def _image_folder(root, per_class: int, classes=("a", "b", "c")):
    """root/<class>/<i>.png: random 8x8 RGB images."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    for cls in classes:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
                root / cls / f"{i}.png")
    return root


def test_train_on_too_few_images_per_class_names_the_split(tmp_path, capsys):
    _image_folder(tmp_path / "data", per_class=2)
    line = _error(capsys, "train", "--data", tmp_path / "data", "--out", tmp_path / "ckpt",
                  "--steps", 1)
    assert line == (f"tflm-vit train: error: {tmp_path / 'data'}: 6 images in 3 classes are "
                    "too few for a stratified 20% test split (each split needs an image of "
                    "every class: at least 15 images)")


def test_export_with_data_of_another_class_count_is_refused(tmp_path, capsys):
    _image_folder(tmp_path / "data", per_class=5)
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "ckpt"),
                 "--steps", "1", "--batch-size", "4"]) == 0
    capsys.readouterr()
    line = _error(capsys, "export", "--checkpoint", tmp_path / "ckpt", "--config", "R0",
                  "--out", tmp_path / "out")
    assert line == ("tflm-vit export: error: the checkpoint was trained on 3 classes but "
                    "--data digits has 10: give the data it was trained on (its accuracy "
                    "would be meaningless)")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["plan", "analyze"])
def test_memory_model_refuses_a_float_model_instead_of_guessing(tmp_path, capsys, command):
    path = tmp_path / "f.tflite"
    path.write_bytes(_tiny_tflite())
    extra = ["-o", tmp_path / "p.tflite"] if command == "plan" else []
    line = _error(capsys, command, path, *extra)
    assert "the memory model covers int8 models; the graph input tensor " in line
    assert "is FLOAT32" in line
    assert not (tmp_path / "p.tflite").exists()


def test_convert_verifies_on_real_images_when_given_data(r0_path, tmp_path, capsys):
    assert main(["convert", str(r0_path), "-o", str(tmp_path / "c.tflite"), "--data",
                 "digits"]) == 0
    out = capsys.readouterr().out
    assert "verification inputs" in out and "on 8 verification" in out
    assert "alone vs stock" in out


def test_convert_with_missing_data_is_one_line(r0_path, tmp_path, capsys):
    line = _error(capsys, "convert", r0_path, "-o", tmp_path / "c.tflite", "--data",
                  tmp_path / "none")
    assert line.startswith("tflm-vit convert: error: ") and "none" in line
    assert not (tmp_path / "c.tflite").exists()


# --- the whole CLI at boundary values (found by a sweep of every command's flags) ---------

@pytest.mark.parametrize("command", [["demo", "--steps", "1"], ["train", "--steps", "1"]])
@pytest.mark.parametrize("seed", ["-1", "4294967296"])
def test_seeds_outside_32_bits_are_refused_by_argparse(tmp_path, capsys, command, seed):
    with pytest.raises(SystemExit) as e:
        main([*command, "--out", str(tmp_path / "o"), "--seed", seed])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "argument --seed:" in err and "is outside [0, 4294967295]" in err
    assert not (tmp_path / "o").exists()


def test_an_unknown_config_name_is_refused_before_training(tmp_path, capsys):
    line = _error(capsys, "demo", "--config", "R9", "--out", tmp_path / "o")
    assert line == ("tflm-vit demo: error: --config R9: not R0, R1, R2, a JSON file or a "
                    "JSON string")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["convert", "plan"])
def test_output_paths_are_checked_before_the_work(r0_path, tmp_path, capsys, command):
    assert _error(capsys, command, r0_path, "-o", "") == \
        f"tflm-vit {command}: error: -o: give an output file"
    assert _error(capsys, command, r0_path, "-o", tmp_path) == \
        f"tflm-vit {command}: error: -o {tmp_path}: is a directory, give an output file"
    missing = tmp_path / "none" / "x.tflite"
    assert _error(capsys, command, r0_path, "-o", missing) == \
        f"tflm-vit {command}: error: -o {missing}: no such directory {missing.parent}"
