"""The latency model (tflm_vit/latency.py): features read from the model, coefficients
fitted by bench/speed.py on counted runs, predictions checked against those counts."""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def r0_planned(exported_r0):
    from tflm_vit.converters.convert import convert
    from tflm_vit.memory import plan_model
    return bytes(plan_model(convert(exported_r0, verify=False).model).model)


def test_features_follow_the_shapes(r0_planned):
    from tflm_vit.latency import op_features
    from tflm_vit.tflite_model import parse_model
    info = parse_model(r0_planned)
    feats = {op.name: op_features(info, op) for op in info.ops}
    n, d = 64, 64  # R0: 32x32 / 4x4 patches, width 64, MLP ratio 2
    assert feats["TV_PATCH_EMBED"] == (n * 4 * 4 * 3 * d, n * d)
    assert feats["TV_ATTENTION"][0] == 2 * n * n * d
    assert feats["TV_MLP"][0] == n * (d * 2 * d + 2 * d * d)
    assert feats["TV_LAYERNORM"] == (0, n * d)
    assert feats["MEAN"][0] == 0 and feats["MEAN"][1] == n * d


def test_prediction_agrees_with_the_counted_runs(r0_planned):
    # model_speed.json holds the counts the coefficients were fitted on; the prediction
    # for R0 must sit within the error the benchmark reports for it, and within 10 %.
    from tflm_vit.latency import predict_latency
    doc = json.loads((REPO / "bench/results/model_speed.json").read_text())
    for cpu in ("cortex-m7", "cortex-m4"):
        counted = next(r["instructions"] for r in doc["models"]
                       if (r["name"], r["cpu"], r["variant"]) == ("R0", cpu, "ours"))
        pred = predict_latency(r0_planned, cpu)
        assert all(op.fitted for op in pred.ops)
        assert abs(pred.instructions / counted - 1) < 0.10, (cpu, pred.instructions, counted)
        assert pred.instructions == sum(op.instructions for op in pred.ops)


def test_kinds_never_counted_use_the_all_kinds_fit(exported_r0):
    from tflm_vit.latency import predict_latency
    pred = predict_latency(exported_r0)  # stock: FULLY_CONNECTED, SOFTMAX, ... never fitted
    unfitted = {op.name for op in pred.ops if not op.fitted}
    assert {"FULLY_CONNECTED", "SOFTMAX"} <= unfitted
    assert pred.instructions > 0


def test_unknown_cpu_is_a_clear_error(r0_planned):
    from tflm_vit.latency import predict_latency
    with pytest.raises(ValueError, match="no latency model for target 'cortex-m0'"):
        predict_latency(r0_planned, "cortex-m0")


def test_missing_coefficients_are_a_clear_error(tmp_path):
    from tflm_vit.errors import ModelFileError
    from tflm_vit.latency import coefficients
    with pytest.raises(ModelFileError, match="run python bench/speed.py"):
        coefficients(tmp_path / "none.json")


def test_analyze_shows_the_prediction(r0_planned, tmp_path):
    path = tmp_path / "r0.tflite"
    path.write_bytes(r0_planned)
    out = subprocess.run([sys.executable, "-m", "tflm_vit.cli", "analyze", str(path), "--cpu",
                          "cortex-m4"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "latency model on cortex-m4:" in out.stdout and "instructions" in out.stdout
