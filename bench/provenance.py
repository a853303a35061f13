"""Where a result file comes from: the commit it was produced at and the command that
produced it, stamped into every file under bench/results."""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def commit() -> str:
    """The short commit hash, with "+uncommitted" when the code has changes (results
    other benchmarks just wrote under bench/results do not count)."""
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", ".",
                            ":(exclude)bench/results"],
                           capture_output=True, text=True).stdout.strip()
    return (proc.stdout.strip() or "unknown") + ("+uncommitted" if dirty else "")


def command(script: str, argv=None) -> str:
    """The command line as a user would type it from the repository root."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"bench/{script}", *args])


def stamp(script: str, argv=None) -> dict:
    return {"commit": commit(), "command": command(script, argv)}


def model_arguments(doc: str, no_firmware: str) -> argparse.ArgumentParser:
    """The options of the benchmarks that run a list of models: --only NAMES (a cheap
    subset, printed, the committed files left alone), --no-firmware, --print-only."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="model names (default: all)")
    ap.add_argument("--no-firmware", action="store_true", help=no_firmware)
    ap.add_argument("--print-only", action="store_true",
                    help="print the document instead of writing bench/results")
    return ap


def publish(doc: dict, name: str, print_only: bool, write_rest) -> int:
    """The end of every benchmark: print the document (a cheap row asked for on the
    command line, the committed files left alone) or write bench/results/<name>.json
    and call write_rest() for its table and plot; then one FAIL line per broken claim
    in doc["problems"]. Returns the exit status: non-zero when a claim is false."""
    import json
    if print_only:
        print(json.dumps(doc, indent=1))
    else:
        results = REPO / "bench" / "results"
        results.mkdir(parents=True, exist_ok=True)
        (results / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
        write_rest()
    for line in doc["problems"]:
        print(f"FAIL {line}", file=sys.stderr)
    return 1 if doc["problems"] else 0
