"""One search per work folder: a second one on a folder in use is refused, naming the
folder and the process that holds it. The lock is an flock on `<folder>/.lock`, which
the operating system releases when its process ends, however it ends: a crashed run
leaves nothing stuck."""

from __future__ import annotations

import contextlib
import fcntl
import os

from tflm_vit.errors import TflmVitError


class FolderInUseError(TflmVitError, RuntimeError):
    """Another process is working in this folder."""


@contextlib.contextmanager
def work_folder_lock(folder: str):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise FolderInUseError(f"{folder} is in use by process {holder} (another search "
                                   "on the same folder); wait for it or use another folder"
                                   ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
