"""Where a search's independent jobs run: in this process, or on Ray (a local Ray, or a
cluster joined with its address).

The jobs are module-level functions of plain arguments (dicts, JSON, NumPy arrays), so
Ray ships them by reference to any worker with tflm-vit installed. Two kinds run here:
costing a batch of architectures (export -> convert -> plan, seconds each) and training
and scoring the candidate spaces of a space-evolution round (minutes each). Results come
back to the driver, which alone writes the work folder, so workers need no shared disk
except for supernet weights (the work folder must be on storage every node sees when
the cluster has more than one machine).
"""

from __future__ import annotations

import os
import signal
import threading

from tflm_vit import interrupt


class Local:
    """Runs every job in this process, in order."""
    workers = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def map(self, fn, argument_lists: list[tuple], gpu: bool = False) -> list:
        out = []
        for args in argument_lists:
            interrupt.check()  # a stop asked for between jobs is not lost
            out.append(fn(*args))
        return out

    def share(self, value):
        """A handle to pass as a job argument for a large value every job reads."""
        return value


class OnRay:
    """Runs jobs as Ray tasks: `address` None starts a local Ray with `workers` CPUs
    (default: all), "auto" or "ray://host:10001" joins a running cluster."""

    def __init__(self, address: str | None = None, workers: int | None = None,
                 timeout_s: float = 10.0):
        import ray
        self.started = not ray.is_initialized()
        self.empty = None
        if self.started:
            import tempfile
            if address is not None:
                reachable(address, timeout_s)
            kw = {"num_cpus": workers or os.cpu_count()} if address is None else {}
            # Workers run in an empty working folder: Ray otherwise starts them in the
            # driver's, and from a checkout's root `import tflm_vit` would find the source
            # tree (no compiled kernels, no tflm_vit.search) instead of the installed one.
            self.empty = tempfile.mkdtemp(prefix="tflm_vit_ray_")
            # ray.init installs its own SIGTERM handler (it aborts the driver, leaving
            # neither the work folder's state nor the one-line message): keep the
            # caller's, which stops cleanly and shuts Ray down through __exit__.
            handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env={"working_dir": self.empty}, **kw)
            for sig, handler in handlers.items():
                if handler is not None and threading.current_thread() is threading.main_thread():
                    signal.signal(sig, handler)
        self._ray = ray
        self._remote = {}
        resources = ray.cluster_resources()
        self.workers = int(resources.get("CPU", 1))
        self.gpus = int(resources.get("GPU", 0))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        """Stops the local Ray this object started (its workers hold a TensorFlow each)."""
        if self.started:
            self._ray.shutdown()
        if self.empty:
            import shutil
            shutil.rmtree(self.empty, ignore_errors=True)
        return False

    def map(self, fn, argument_lists: list[tuple], gpu: bool = False) -> list:
        """gpu: a training job; on a cluster with GPUs each gets one of its own (Ray sets
        CUDA_VISIBLE_DEVICES), so jobs on one machine do not share a GPU."""
        key = (fn, gpu and self.gpus > 0)
        if key not in self._remote:
            options = {"num_cpus": 1, "num_gpus": 1 if key[1] else 0}
            self._remote[key] = self._ray.remote(**options)(fn)
        try:
            return self._ray.get([self._remote[key].remote(*args) for args in argument_lists])
        except self._ray.exceptions.RayTaskError as e:
            # The job's own exception, as the in-process executor raises it (a BudgetError
            # stays one; the CLI prints one line, not the worker's traceback).
            raise e.cause from None

    def share(self, value):
        """Puts the value in Ray's object store once; tasks receive it resolved."""
        return self._ray.put(value)


def reachable(address: str, timeout_s: float) -> None:
    """TflmVitError naming the address when a Ray cluster's host:port (or ray://host:port)
    does not answer within timeout_s ("auto" is looked up by Ray itself); Ray would
    otherwise retry for minutes."""
    import socket

    from tflm_vit.errors import TflmVitError
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise TflmVitError(f"--ray-address {address}: not 'auto', HOST:PORT or "
                           "ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise TflmVitError(f"--ray-address {address}: no Ray cluster answers there within "
                           f"{timeout_s:g} s ({e.strerror or e})") from None


def executor(ray_address: str | None = None, workers: int | None = None, use_ray=True,
             timeout_s: float = 10.0):
    return OnRay(ray_address, workers, timeout_s) if use_ray else Local()
