"""The C kernel tests (custom_ops/tests/kernel_tests.c) built with AddressSanitizer and
UndefinedBehaviorSanitizer and run; any memory error or UB aborts the program."""

import os
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


# The venv's cmake (Makefile build requirements), else the system's.
CMAKE = shutil.which("cmake", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                   os.environ.get("PATH", "")]))


def test_kernels_under_asan_and_ubsan(tmp_path):
    assert CMAKE, "cmake not found: `make install` puts it in .venv/bin"
    build = tmp_path / "build"
    subprocess.run([CMAKE, "-S", str(ROOT), "-B", str(build), "-DTV_SANITIZE=ON",
                    "-DCMAKE_BUILD_TYPE=Debug"], check=True, capture_output=True)
    subprocess.run([CMAKE, "--build", str(build), "--target", "kernel_tests", "-j2"],
                   check=True, capture_output=True)
    proc = subprocess.run([str(build / "kernel_tests")], capture_output=True, text=True,
                          env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
                               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "kernel tests passed" in proc.stdout
