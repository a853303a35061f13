"""tflm_vit.interrupt: a stop that Python loses (swallowed, or stuck behind a lock the
KeyboardInterrupt broke) still ends the process, with the caller's last words and 130."""

import signal
import subprocess
import sys
import textwrap
import time

# Code that swallows the KeyboardInterrupt (as a finaliser or a library handler may) and
# never reaches interrupt.check(): only the watchdog can end it. The try holds everything
# from "ready" on (a signal landing between two iterations of a try inside the loop would
# escape it and end the process by SIGINT: seen on a loaded machine).
SWALLOWS = textwrap.dedent("""
    import sys, time
    from tflm_vit import interrupt
    with interrupt.handled(lambda: "demo: interrupted; work kept", grace_s=2.0):
        try:
            print("ready", flush=True)
            while True:
                time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        while True:  # swallowed: the one signal is spent, nothing ends this loop
            time.sleep(0.05)
""")

# A loop that swallows the raise but passes a safe point: the stop is not lost.
CHECKS = textwrap.dedent("""
    import sys, time
    from tflm_vit import interrupt
    with interrupt.handled(lambda: "never printed", grace_s=60.0):
        print("ready", flush=True)
        try:
            while True:
                try:
                    time.sleep(0.05)
                except KeyboardInterrupt:
                    pass
                interrupt.check()
        except KeyboardInterrupt:
            print("stopped at a safe point", file=sys.stderr)
            sys.exit(130)
""")


def _interrupt(script: str) -> tuple[int, str, float]:
    proc = subprocess.Popen([sys.executable, "-P", "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd="/",
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().strip() == "ready"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, time.monotonic() - t0


def test_a_swallowed_interrupt_ends_the_process_after_the_grace_period():
    code, err, seconds = _interrupt(SWALLOWS)
    assert code == 130
    assert err.strip().splitlines() == ["demo: interrupted; work kept"]
    assert 2.0 <= seconds < 30


def test_a_safe_point_raises_again_what_was_swallowed():
    code, err, seconds = _interrupt(CHECKS)
    assert code == 130
    assert err.strip().splitlines() == ["stopped at a safe point"]
    assert seconds < 30
