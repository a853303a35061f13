"""The user-facing command line: train, resume, export, and clear errors."""

import os
import subprocess
import sys

EXE = os.path.join(os.path.dirname(sys.executable), "tflm-vit")


def _run(*args):
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600)


def test_train_then_export(tmp_path):
    ckpt, out = str(tmp_path / "ckpt"), str(tmp_path / "export")
    p = _run("train", "--out", ckpt, "--steps", "3", "--batch-size", "16", "--quiet")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "step 3" in p.stdout
    config = '{"resolution": 16, "patch_size": 8, "embed_dim": 32, "depth": 1, ' \
             '"num_heads": 2, "mlp_ratio": 1.0, "rank_ratio": 0.5}'
    p = _run("export", "--checkpoint", ckpt, "--config", config, "--out", out)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "int8 TFLM top-1" in p.stdout and "arena total" in p.stdout
    assert os.path.exists(os.path.join(out, "subnet_int8.tflite"))
    assert os.path.exists(os.path.join(out, "subnet_timeline.png"))


def test_bad_config_and_checkpoint_are_clear(tmp_path):
    p = _run("export", "--checkpoint", str(tmp_path), "--config", "R0")
    assert p.returncode == 2 and "space.json" in p.stderr
    ckpt = str(tmp_path / "c")
    assert _run("train", "--out", ckpt, "--steps", "1", "--batch-size", "8",
                "--quiet").returncode == 0
    p = _run("export", "--checkpoint", ckpt, "--config", '{"resolution": 16}')
    assert p.returncode == 2 and "patch_size: is missing" in p.stderr
    p = _run("export", "--checkpoint", ckpt, "--config", "R2")
    assert p.returncode == 2 and "resolution" in p.stderr  # R2 lies outside this space
