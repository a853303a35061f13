"""Capture what C++ code writes to a file descriptor (TFLM prints to fd 2 directly,
so redirecting sys.stderr would miss it)."""

import contextlib
import os
import sys
import tempfile


@contextlib.contextmanager
def capture_fd(fd: int = 2):
    """Yields a list that holds the captured text once the block exits."""
    out: list[str] = []
    sys.stderr.flush()
    sys.stdout.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), fd)
        try:
            yield out
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))
