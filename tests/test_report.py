"""Memory report and model loading: real figures from the wheel, clear errors on bad files."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tflm_vit import report, runtime
from tflm_vit.errors import ModelFileError, UnsupportedOpError
from tflm_vit.tflite_model import load_model


def test_report_matches_the_interpreter(exported_r0, tmp_path):
    r = report.analyze(exported_r0, name="R0")
    assert r.arena_total == r.arena_head + r.arena_tail
    assert r.flash == len(exported_r0)
    assert len(r.ops) == len(load_model(exported_r0)[1].ops)
    assert r.arena_head > 0 and r.tail_buckets
    # An independent check: the smallest arena TFLM accepts is the recorded total, up
    # to TFLM aligning the tail to 16 bytes inside the buffer it is given.
    smallest = runtime.smallest_arena(exported_r0, r.arena_total)
    assert r.arena_total - 16 < smallest <= r.arena_total
    text = report.format_report(r)
    assert f"{r.arena_total:,}" in text and "FULLY_CONNECTED" in text
    png = tmp_path / "t.png"
    report.plot_timeline(r, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_explicit_small_arena_is_refused_not_crashing(exported_r0):
    with pytest.raises(runtime.ArenaTooSmallError, match="records"):
        runtime.make_interpreter(exported_r0, arena_size=35000)
    with pytest.raises(runtime.ArenaTooSmallError):
        runtime.make_interpreter(exported_r0, arena_size=0)


def test_not_a_tflite_file(tmp_path):
    p = tmp_path / "model.tflite"
    p.write_text("hello, I am text")
    with pytest.raises(ModelFileError, match="not a TFLite flatbuffer"):
        report.analyze(str(p))
    with pytest.raises(ModelFileError, match="no such file"):
        report.analyze(str(tmp_path / "missing.tflite"))


@pytest.mark.parametrize("cut", [0.9, 0.5, 0.1])
def test_truncated_model(exported_r0, cut):
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        report.analyze(exported_r0[: int(len(exported_r0) * cut)])


def test_corrupted_model_never_crashes(exported_r0):
    """Random byte flips in the flatbuffer's tables: a clear error or a valid model,
    never a crash of the process (checked in a child process)."""
    code = (
        "import sys, numpy as np\n"
        "from tflm_vit import report\n"
        "from tflm_vit.errors import TflmVitError\n"
        "data = bytearray(open(sys.argv[1], 'rb').read())\n"
        "rng = np.random.default_rng(int(sys.argv[2]))\n"
        "for i in rng.integers(8, 4096, 16): data[i] ^= 0xFF\n"
        "try:\n    report.analyze(bytes(data)); print('VALID')\n"
        "except TflmVitError as e:\n    print('ERROR', e)\n")
    import tempfile
    with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as f:
        f.write(exported_r0)
    try:
        outcomes = []
        for seed in range(6):
            proc = subprocess.run([sys.executable, "-P", "-c", code, f.name, str(seed)],
                                  capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, (seed, proc.returncode, proc.stderr[-2000:])
            outcomes.append(proc.stdout.split()[0])
        assert "ERROR" in outcomes
    finally:
        os.unlink(f.name)


def test_unresolvable_op_is_named(tmp_path):
    import keras

    from tflm_vit.export import keras_to_tflite
    inp = keras.Input((4, 8), batch_size=1)
    model = keras.Model(inp, keras.layers.Dense(8, activation="gelu")(inp))
    data = keras_to_tflite(model, np.random.default_rng(0).normal(size=(4, 4, 8)))
    with pytest.raises(UnsupportedOpError, match="GELU") as e:
        report.analyze(data)
    assert e.value.op_name == "GELU" and e.value.operator_indices


def test_cli_analyze(exported_r0, tmp_path):
    p = tmp_path / "r0.tflite"
    p.write_bytes(exported_r0)
    png = tmp_path / "r0.png"
    exe = os.path.join(os.path.dirname(sys.executable), "tflm-vit")
    proc = subprocess.run([exe, "analyze", str(p), "--json", "--png", str(png)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout[: proc.stdout.rindex("}") + 1])
    assert d["arena_total"] == d["arena_head"] + d["arena_tail"] and png.exists()
    index, name = d["bound_op"].split()
    assert d["ops"][int(index)]["op"] == name and d["lower_bound"] <= d["planned_arena"]
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(exported_r0[:1000])
    proc = subprocess.run([exe, "analyze", str(bad)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "truncated or corrupted" in proc.stderr
