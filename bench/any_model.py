"""Any int8 model, planned exactly: common MCU models written the usual way (Keras, random
weights, full int8 through TFLiteConverter, tflm_vit.model_zoo), our R0 and the demo's
ViT (stock exports), on every target the memory model covers.

Per model and target (the wheel; the emulated Cortex-M7 and Cortex-M4 with TFLM's
reference and CMSIS-NN kernels): the arena TFLM records for the model as given
(`stock_arena`), the arena it records for the model planned by `plan_model`
(`planned_arena`), the memory model's prediction for the planned one
(`predicted_arena`, which must be the recorded figure to the byte), the arena we tell
the user to give, the planned model run in exactly that arena (`runs_at_arena`) and 16
bytes below it (`fails_16_below`, where the recorded total sets the arena), and the
planned model's output against the stock model's on the same input.

Exits non-zero on any false claim. Writes bench/results/any_model.json ({"commit",
"command", "rows": [{"name", "target", "kernels", "stock_arena", "planned_arena",
"predicted_arena", "arena_to_give", "outputs_identical", "runs_at_arena",
"fails_16_below", "ops"}], "problems"}) and any_model.md.

Run: .venv/bin/python bench/any_model.py [--only resnet8 ...] [--no-firmware]
"""

from __future__ import annotations

import pathlib
import re
import sys
import tempfile
import time

import numpy as np

from tflm_vit import model_zoo, runtime
from tflm_vit.memory import plan_model, predict
from tflm_vit.tflite_model import parse_model

REPO = pathlib.Path(__file__).resolve().parents[1]
from provenance import model_arguments, publish, stamp  # noqa: E402  (bench/provenance.py)

from tflm_vit.firmware import on_target  # noqa: E402
from tflm_vit.firmware import qemu  # noqa: E402

# Where TFLM's Prepare or planning phase, not the recorded total, sets the arena, the
# memory model may err high by this much (tflm_vit/memory/tail.py), never low.
PREPARE_SLACK = 32

ZOO = ("mobilenet_v2_0.35_96", "mobilenet_v3_small_0.75_96", "resnet8", "ds_cnn",
       "mobilenet_v1_vww", "autoencoder", "op_sampler")


def models(only=None) -> dict[str, bytes]:
    out = {}
    for name in ZOO:
        if not only or name in only:
            out[name] = model_zoo.build(name)
    if not only or "R0" in only or "demo" in only:
        vit = {m.name: m.data for m in on_target.models(random_subnets=0, demo_steps=50)
               if m.variant == "stock"}
        out.update({k: v for k, v in vit.items() if not only or k in only})
    return out


def _input(data: bytes) -> np.ndarray:
    info = parse_model(data)
    shape = info.tensors[info.inputs[0]].shape
    return np.random.default_rng(0).integers(-128, 128, shape, dtype=np.int8)


def wheel_row(name: str, data: bytes) -> dict:
    planned = plan_model(data, target="wheel")
    x = _input(data)
    give = planned.arena_size
    runs = runtime.fits(planned.model, give)
    return {"name": name, "target": "wheel", "kernels": "reference",
            "stock_arena": runtime.allocations(data).total,
            "planned_arena": runtime.allocations(planned.model).total,
            "predicted_arena": planned.after.total, "arena_to_give": give,
            "outputs_identical": bool(np.array_equal(runtime.invoke(data, x),
                                                     runtime.invoke(planned.model, x))),
            "runs_at_arena": runs,
            "fails_16_below": not runtime.fits(planned.model, give - 16),
            "set_by_recorded_total": give == planned.after.total,
            "smallest_that_runs": (None if give == planned.after.total
                                   else runtime.smallest_arena(planned.model, give)),
            "ops": len(parse_model(data).ops)}


def firmware_rows(name: str, data: bytes, build, work: pathlib.Path) -> dict:
    target = on_target.TARGET_OF[build.kernels]
    planned = plan_model(data, target=target)
    x = _input(data)
    (work / "in.bin").write_bytes(x.tobytes())
    paths = {}
    for variant, model in (("stock", data), ("planned", planned.model)):
        paths[variant] = work / f"{name}_{variant}.tflite"
        paths[variant].write_bytes(model)

    def run(variant, arena):
        return qemu.run(build.model_runner, build.cpu, [paths[variant], work / "in.bin", arena])

    def recorded(result):
        m = re.search(r"arena_used_bytes (\d+)", result.output)
        out = re.search(r"output ([0-9a-f]+)", result.output)
        return (int(m.group(1)) if m else None), (out.group(1) if out else None)

    stock_used, stock_out = recorded(run("stock", 1 << 20))
    planned_used, planned_out = recorded(run("planned", 1 << 20))
    give = planned.arena_size
    at, below = run("planned", give), run("planned", give - 16)
    set_by_total = give == -(-planned.after.total // 16) * 16
    smallest = None
    if not set_by_total:  # TFLM's Prepare or planning phase sets it: bisect (16-byte steps)
        lo, hi = -(-planned.after.total // 16) - 1, give // 16  # lo*16 fails, hi*16 runs
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = run("planned", mid * 16)
            lo, hi = (lo, mid) if r.returncode == 0 and "TFLM_VIT_RUN_PASS" in r.output \
                else (mid, hi)
        smallest = hi * 16
    return {"name": name, "target": build.cpu, "kernels": build.kernels,
            "stock_arena": stock_used, "planned_arena": planned_used,
            "predicted_arena": planned.after.total, "arena_to_give": give,
            "outputs_identical": stock_out is not None and stock_out == planned_out,
            "runs_at_arena": at.returncode == 0 and "TFLM_VIT_RUN_PASS" in at.output,
            "fails_16_below": below.returncode != 0
            and "TFLM_VIT_RUN_FAIL AllocateTensors" in below.output,
            "set_by_recorded_total": set_by_total,
            "smallest_that_runs": smallest,
            "stock_predicted": predict(data, target).total,
            "ops": len(parse_model(data).ops)}


def problems(rows: list[dict]) -> list[str]:
    bad = []
    for r in rows:
        where = f"{r['name']} on {r['target']} ({r['kernels']})"
        if r["planned_arena"] != r["predicted_arena"]:
            bad.append(f"{where}: planned arena recorded {r['planned_arena']} != predicted "
                       f"{r['predicted_arena']}")
        if r.get("stock_predicted") is not None and r["stock_predicted"] != r["stock_arena"]:
            bad.append(f"{where}: stock arena recorded {r['stock_arena']} != predicted "
                       f"{r['stock_predicted']}")
        if r["planned_arena"] > r["stock_arena"]:
            bad.append(f"{where}: the plan ({r['planned_arena']}) is worse than TFLM's "
                       f"({r['stock_arena']})")
        if not r["outputs_identical"]:
            bad.append(f"{where}: planned output differs from the stock model's")
        if not r["runs_at_arena"]:
            bad.append(f"{where}: does not run in the arena to give, {r['arena_to_give']}")
        if r["set_by_recorded_total"] and not r["fails_16_below"]:
            bad.append(f"{where}: still runs 16 bytes below the arena to give")
        if r.get("smallest_that_runs") is not None and \
                r["arena_to_give"] - r["smallest_that_runs"] > PREPARE_SLACK:
            bad.append(f"{where}: the arena to give ({r['arena_to_give']}) is "
                       f"{r['arena_to_give'] - r['smallest_that_runs']} bytes above the "
                       f"smallest that runs ({r['smallest_that_runs']})")
    return bad


def write_table(doc: dict, path: pathlib.Path) -> None:
    lines = ["# Any int8 model: TFLM's arena vs ours\n",
             f"commit {doc['commit']}; `{doc['command']}`; {doc['seconds']:.0f} s\n",
             "Arena bytes TFLM records (recording allocator) for the model as given and as "
             "planned by `tflm-vit plan`; the memory model's prediction for the planned one "
             "(equal to the byte on every row: the benchmark fails otherwise); the arena to "
             "give, in which the planned model runs, and 16 bytes below which it fails to "
             "load where the recorded total sets it.\n",
             "| model | target | kernels | ops | TFLM (stock) | planned | predicted | saved | "
             "arena to give | runs there | fails 16 below | smallest that runs | "
             "outputs identical |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        saved = r["stock_arena"] - r["planned_arena"]
        lines.append(
            f"| {r['name']} | {r['target']} | {r['kernels']} | {r['ops']} | "
            f"{r['stock_arena']:,} | {r['planned_arena']:,} | {r['predicted_arena']:,} | "
            f"{saved:,} ({saved / r['stock_arena']:.1%}) | {r['arena_to_give']:,} | "
            f"{'yes' if r['runs_at_arena'] else 'NO'} | "
            f"{'yes' if r['fails_16_below'] else ('n/a' if not r['set_by_recorded_total'] else 'NO')} | "
            f"{'–' if r.get('smallest_that_runs') is None else format(r['smallest_that_runs'], ',')} | "
            f"{'yes' if r['outputs_identical'] else 'NO'} |")
    saved = sorted({r["name"] for r in doc["rows"] if r["planned_arena"] < r["stock_arena"]})
    lines.append("\nWhere the plan saves nothing, the model's peak is two consecutive "
                 "activations that TFLM's own greedy plan already packs, and the op between "
                 "them may not write its output over its input under our rules "
                 "(`tflm_vit/memory/aliasing.py`: elementwise ADD, MUL, LOGISTIC, TANH, "
                 "HARD_SWISH, RELU, RELU6, QUANTIZE and RESHAPE write over an input of the "
                 "output's shape and size that dies there; a convolution, a pooling or a "
                 "FULLY_CONNECTED reads a window of its input after writing outputs, so it "
                 "never may). Saved on: " + (", ".join(saved) or "none") + ".")
    lines.append("\nWhere the head is small (the all-dense autoencoder), the arena is set "
                 "not by what TFLM records but by what it needs while an op's Prepare runs "
                 "(its temporary tensors above the tail): `tflm_vit/memory/tail.py` "
                 f"`prepare_need`, which errs high by at most {PREPARE_SLACK} bytes (the "
                 "\"smallest that runs\" column, found by bisection) and never low.")
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    args = model_arguments(__doc__, "the wheel only").parse_args(argv)
    t0 = time.monotonic()
    ms = models(args.only)
    rows = [wheel_row(n, d) for n, d in ms.items()]
    if not args.no_firmware:
        with tempfile.TemporaryDirectory() as d:
            for cpu in on_target.CPUS:
                for kernels in on_target.KERNELS:
                    build = qemu.build(cpu, kernels)
                    rows += [firmware_rows(n, data, build, pathlib.Path(d))
                             for n, data in ms.items()]
    doc = {**stamp("any_model.py", argv), "seconds": time.monotonic() - t0, "rows": rows}
    doc["problems"] = problems(rows)
    return publish(doc, "any_model", args.print_only or bool(args.only),
                   lambda: write_table(doc, REPO / "bench" / "results" / "any_model.md"))


if __name__ == "__main__":
    sys.exit(main())
