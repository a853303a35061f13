"""Our ops and models on an emulated Cortex-M: TFLM built for Cortex-M7 and Cortex-M4,
reference and CMSIS-NN kernels, run under qemu-system-arm (MPS2 boards, semihosting).

For R0, the demo's model (the default space's largest subnet, trained on digits as the
demo trains it) and five random subnets of the default space, each as stock, converted
and converted + planned: the output bytes on target against the tflite-micro wheel's on
the same input, the arena TFLM's recording allocator measures on target against the
memory model's prediction for that target, and, for planned models, a run in exactly the
arena the project tells the user to give (`tflm-vit plan/export-c --target cortex-m`)
and a run 16 bytes below it, which must fail with TFLM's error.

Writes bench/results/firmware.json ({"commit", "command", "models": [{"name", "variant",
"kernels", "cpu", "arena_measured", "arena_predicted", "outputs_match_wheel", ...}]}) and
firmware.md, and exits non-zero if any row breaks a claim (outputs differ, prediction
off by a byte, the planned arena does not run or is not tight).

Run: .venv/bin/python bench/firmware.py [--demo-steps N]   (or: make bench)
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile

from provenance import publish, stamp  # bench/provenance.py, beside this script

from tflm_vit.firmware import qemu
from tflm_vit.firmware.on_target import (CPUS, DEMO_STEPS, KERNELS, PLANNING_ROOM_MARGIN,
                                         check_on_target, models, models_r0, problems)

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def _n(v) -> str:
    return "" if v is None else f"{v:,}"


def write_table(rows: list[dict], path: pathlib.Path, header: str) -> None:
    lines = [
        "# tflm-vit on an emulated Cortex-M (qemu-system-arm, MPS2)", "",
        header, "",
        "Bytes. *measured*: TFLM's recording allocator on target (`arena_used_bytes`); "
        "*predicted*: the memory model for that target (`--target cortex-m`, kernels as "
        "built); *wheel*: the memory model's x86-64 wheel figure for the same model; "
        "*to give*: the arena `tflm-vit plan/export-c --target cortex-m` tells the user; "
        "planned models run in it, and fail 16 bytes below it when the recorded total sets "
        "it; for tiny models the room TFLM needs while planning sets it, and the table "
        f"shows the smallest arena found on target (at most {PLANNING_ROOM_MARGIN} bytes "
        "below).", "",
        "| model | variant | cpu | kernels | measured | predicted | wheel | to give "
        "| set by | smallest on target | output = wheel |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['variant']} | {r['cpu']} | {r['kernels']} "
            f"| {r['arena_measured']:,} | {r['arena_predicted']:,} "
            f"| {r['arena_wheel_predicted']:,} | {_n(r.get('arena_to_give'))} "
            f"| {r.get('set_by', '')} | {_n(r.get('smallest_arena'))} "
            f"| {'yes' if r['outputs_match_wheel'] else 'NO'} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo-steps", type=int, default=DEMO_STEPS)
    p.add_argument("--cpus", nargs="+", default=list(CPUS), choices=CPUS)
    p.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=KERNELS)
    p.add_argument("--only-r0", action="store_true",
                   help="R0 only, printed as JSON; the committed files are left alone")
    a = p.parse_args(argv)
    ms = models_r0() if a.only_r0 else models(demo_steps=a.demo_steps)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for cpu in a.cpus:
            for kernels in a.kernels:
                build = qemu.build(cpu, kernels)
                rows += check_on_target(build, ms, pathlib.Path(tmp))
                print(f"{cpu} {kernels}: {len(ms)} models checked", file=sys.stderr)
    doc = {**stamp("firmware.py", argv), "problems": problems(rows), "models": rows}
    return publish(doc, "firmware", a.only_r0, lambda: write_table(
        rows, RESULTS / "firmware.md", f"Written by `{doc['command']}` at commit "
        f"{doc['commit']}. {len(rows)} runs; claims broken: {len(doc['problems'])}."))


if __name__ == "__main__":
    sys.exit(main())
