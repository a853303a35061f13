"""Ctrl-C and SIGTERM as a normal event for long commands (search, train, demo).

The first signal raises KeyboardInterrupt in the main thread, as Python's default does,
and also records the request, because a KeyboardInterrupt raised at an arbitrary
bytecode can be lost: swallowed inside a finaliser or by a library's own handler, or
stuck behind a lock it interrupted half-way. So the long loops (training steps, epochs,
search rounds) call `check()`, which raises again while a stop is pending, and a
watchdog ends the process after `GRACE_S` with the caller's last words if no loop got
there: every state file is written atomically or appended tolerantly, so what is on disk
then is what a clean stop leaves. A second signal raises at once.

    with interrupt.handled(last_words):   # in the CLI's main()
        ...
        interrupt.check()                  # in every long loop
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

GRACE_S = 20.0
EXIT_STATUS = 130

_requested: list[int] = []
_said: list[bool] = []  # the caller printed its last words itself: the watchdog only exits


def requested() -> bool:
    """Whether SIGINT or SIGTERM arrived since `handled` was entered."""
    return bool(_requested)


def check() -> None:
    """Raises KeyboardInterrupt while a stop is pending (a safe point in a long loop)."""
    if _requested:
        raise KeyboardInterrupt


def _watchdog(last_words, grace_s: float) -> None:
    def expire():
        if not _said:
            with contextlib.suppress(Exception):
                print(last_words(), file=sys.stderr, flush=True)
        os._exit(EXIT_STATUS)
    timer = threading.Timer(grace_s, expire)
    timer.daemon = True
    timer.start()


@contextlib.contextmanager
def handled(last_words, grace_s: float = GRACE_S):
    """Installs the handler for SIGINT and SIGTERM (a signal the caller ignores, as a
    shell does SIGINT for background jobs, stays ignored); `last_words()` is the line the
    watchdog prints when it has to end the process itself. After a signal the watchdog
    outlives the block: it also ends a process whose exit hangs (threads, clusters)."""
    def stop(signum, frame):
        first = not _requested
        _requested.append(signum)
        if first:
            _watchdog(last_words, grace_s)
        raise KeyboardInterrupt
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig, handler in previous.items():
        if handler is not signal.SIG_IGN:
            signal.signal(sig, stop)
    try:
        yield
    finally:
        if _requested:
            _said.append(True)
        _requested.clear()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
