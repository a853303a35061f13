"""Speed on an emulated Cortex-M, in instructions (tflm_vit/firmware/instructions.py): per
model, stock TFLM with its reference kernels, stock TFLM with CMSIS-NN, and ours
(converted + planned, built with CMSIS-NN, so our DSP fast paths are in); per kernel, our ops' MACs and
instructions with the portable C ("naive", the reference build) and the fast paths
("optimized", the CMSIS-NN build); and the latency model (tflm_vit/latency.py) fitted on
these counts, with its leave-one-model-out error.

Models: R0, the demo's model (the default space's largest subnet trained on digits as
`tflm-vit demo` trains it) and T196 (224x224 images, 16x16 patches: 196 tokens, width 64,
depth 2). Every model of the per-model table on M7; the kernels also on M4.

Writes bench/results/model_speed.json ({"commit", "command", "models": [{"name", "cpu",
"variant", "instructions", "arena", "per_op"}], "latency_model": {...}}),
kernel_speed.json ({"kernels": [{"name", "cpu", "macs", "instructions",
"macs_per_instruction", "variant"}], "stock_kernels": [the same for stock TFLM's
FULLY_CONNECTED on the same models, variant "stock_reference" or "stock_cmsis_nn"]}),
speed.md and speed.png, and
tflm_vit/latency_coefficients.json (the latency model's coefficients). Exits non-zero when
a claim is false: ours above 0.6x stock + CMSIS-NN on any model on M7, an output that
differs between the three variants' int8 models in the wheel and on target, or a model
whose arena does not keep the memory win.

Run: .venv/bin/python bench/speed.py [--demo-steps N] [--only R0]   (or: make bench)
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile

import numpy as np

from tflm_vit import latency
from tflm_vit.space import SubnetConfig
from tflm_vit.supernet import trained_shaped

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
from provenance import publish, stamp  # noqa: E402  (bench/provenance.py)

from tflm_vit.firmware import instructions, qemu  # noqa: E402
from tflm_vit.firmware import on_target  # noqa: E402  (the models bench/firmware.py checks)
T196 = SubnetConfig(224, 16, 64, 2, 2, 2.0)
TARGET_RATIO = 0.6       # ours / stock + CMSIS-NN on M7, every model
TARGET_LINEAR_MPI = 1.0  # MACs per instruction of the linear kernels on M7 (reported)
LINEAR_KINDS = ("TV_LINEAR", "TV_LOW_RANK_LINEAR", "TV_MLP")
# Stock TFLM's ops for the same layers' linear maps: what our linear kernels replace, and
# what CMSIS-NN itself reaches on them (the yardstick for the MAC-per-instruction target).
STOCK_KINDS = ("FULLY_CONNECTED",)
OUR_KINDS = ("TV_PATCH_EMBED", "TV_LINEAR", "TV_LOW_RANK_LINEAR", "TV_ATTENTION", "TV_MLP",
             "TV_LAYERNORM", "TV_GELU")
ARENA = 1 << 20


def models(only: str | None, demo_steps: int) -> list[on_target.Model]:
    if only == "R0":
        return on_target.models_r0()
    out = on_target.models(random_subnets=0, demo_steps=demo_steps)  # R0 and the demo's
    net = trained_shaped(on_target.reference_net())
    rep = np.random.default_rng(0).uniform(-1, 1, (4, 224, 224, 3)).astype(np.float32)
    out += on_target.variants("T196", net, T196, rep)
    return out


def _run(build, m: on_target.Model, tmp: pathlib.Path) -> dict:
    path, inp = tmp / f"{m.name}_{m.variant}.tflite", tmp / f"{m.name}_input.bin"
    path.write_bytes(m.data)
    inp.write_bytes(m.image.tobytes())
    c = instructions.count(build, path, inp, ARENA)
    out, used = on_target.parse_output(c.output)
    return {"counts": c, "output": out, "arena": used}


def _op_rows(m: on_target.Model, counts) -> list[dict]:
    """One row per op: its kind, features and counted instructions (for the fit)."""
    from tflm_vit.tflite_model import parse_model
    info = parse_model(m.data)
    rows = []
    for op, (tag, n) in zip(info.ops, counts.ops):
        macs, elements = latency.op_features(info, op)
        rows.append({"model": m.name, "kind": op.name, "macs": macs, "elements": elements,
                     "instructions": n})
    return rows


def fit(op_rows: list[dict]) -> dict:
    """Least squares per kind: instructions = a macs + b elements + c; plus the all-kinds
    fallback. Kinds without MACs fit b and c only."""
    kinds = {}
    groups = {k: [r for r in op_rows if r["kind"] == k] for k in {r["kind"] for r in op_rows}}
    groups[latency.FALLBACK] = op_rows
    for kind, rows in sorted(groups.items()):
        x = np.array([[r["macs"], r["elements"], 1.0] for r in rows], float)
        y = np.array([r["instructions"] for r in rows], float)
        used = [j for j in range(3) if j == 2 or x[:, j].any()]
        coef = np.zeros(3)
        coef[used] = np.linalg.lstsq(x[:, used], y, rcond=None)[0]
        kinds[kind] = [float(v) for v in coef]
    return kinds


def _predict_rows(kinds: dict, rows: list[dict]) -> int:
    return sum(latency.op_instructions(kinds.get(r["kind"], kinds[latency.FALLBACK]),
                                       r["macs"], r["elements"]) for r in rows)


def validate(op_rows: list[dict]) -> list[dict]:
    """Per model: the fit's error on it, and the error when it is left out of the fit."""
    out, everything = [], fit(op_rows)
    for name in sorted({r["model"] for r in op_rows}):
        mine = [r for r in op_rows if r["model"] == name]
        others = [r for r in op_rows if r["model"] != name]
        counted = sum(r["instructions"] for r in mine)
        row = {"model": name, "counted": counted,
               "predicted_in_fit": _predict_rows(everything, mine)}
        if others:
            row["predicted_left_out"] = _predict_rows(fit(others), mine)
        row["error_in_fit"] = row["predicted_in_fit"] / counted - 1
        if "predicted_left_out" in row:
            row["error_left_out"] = row["predicted_left_out"] / counted - 1
        out.append(row)
    return out


def kernel_rows(model_name: str, op_rows: list[dict], cpu: str, variant: str,
                kinds=OUR_KINDS) -> list[dict]:
    rows = []
    for kind in kinds:
        mine = [r for r in op_rows if r["kind"] == kind]
        if not mine:
            continue
        macs = sum(r["macs"] for r in mine)
        n = sum(r["instructions"] for r in mine)
        rows.append({"name": f"{kind} ({model_name})", "kind": kind, "model": model_name,
                     "cpu": cpu, "macs": macs, "instructions": n,
                     "macs_per_instruction": round(macs / n, 4) if n else 0.0,
                     "variant": variant})
    return rows


def problems(model_rows: list[dict], outputs_agree: dict) -> list[str]:
    bad = []
    by = {(r["name"], r["cpu"], r["variant"]): r for r in model_rows}
    for (name, cpu, variant), r in by.items():
        if variant != "ours":
            continue
        stock = by.get((name, cpu, "stock_cmsis_nn"))
        if stock is None:
            continue
        ratio = r["instructions"] / stock["instructions"]
        if cpu == "cortex-m7" and ratio > TARGET_RATIO:
            bad.append(f"{name} on {cpu}: ours {r['instructions']:,} instructions = "
                       f"{ratio:.2f}x stock + CMSIS-NN, above {TARGET_RATIO}")
        if r["arena"] >= stock["arena"]:
            bad.append(f"{name} on {cpu}: arena {r['arena']:,} does not beat stock's "
                       f"{stock['arena']:,}")
    for what, ok in outputs_agree.items():
        if not ok:
            bad.append(f"{what}: outputs differ from the wheel's")
    return bad


def write_table(doc: dict, path: pathlib.Path) -> None:
    lines = ["# Speed on an emulated Cortex-M (instructions, qemu-system-arm)", "",
             f"Written by `{doc['command']}` at commit {doc['commit']}. Instructions of one "
             "`Invoke()`, counted exactly under QEMU (not cycles). *ours* = converted + "
             "planned, built with CMSIS-NN (our DSP fast paths).", "",
             "## Per model", "",
             "| model | cpu | variant | instructions | / stock + CMSIS-NN | arena |",
             "|---|---|---|---|---|---|"]
    by = {(r["name"], r["cpu"], r["variant"]): r for r in doc["models"]}
    for r in doc["models"]:
        stock = by.get((r["name"], r["cpu"], "stock_cmsis_nn"))
        ratio = f"{r['instructions'] / stock['instructions']:.2f}x" if stock else ""
        lines.append(f"| {r['name']} | {r['cpu']} | {r['variant']} | {r['instructions']:,} "
                     f"| {ratio} | {r['arena']:,} |")
    lines += ["", "## Per op kind (instructions)", "",
              "| model | cpu | variant | " + " | ".join(["op kind", "instructions"]) + " |",
              "|---|---|---|---|---|"]
    for r in doc["models"]:
        for kind, n in sorted(r["per_op"].items(), key=lambda kv: -kv[1])[:6]:
            lines.append(f"| {r['name']} | {r['cpu']} | {r['variant']} | {kind} | {n:,} |")
    lines += ["", "## Our kernels", "",
              "| kernel | cpu | variant | MACs | instructions | MACs / instruction |",
              "|---|---|---|---|---|---|"]
    for k in doc["kernels"]:
        lines.append(f"| {k['name']} | {k['cpu']} | {k['variant']} | {k['macs']:,} "
                     f"| {k['instructions']:,} | {k['macs_per_instruction']:.3f} |")
    lat = doc["latency_model"]
    lines += ["", "## Latency model (tflm_vit/latency.py)", "",
              "Instructions per op = a MACs + b elements + c per op kind, fitted on the "
              "counts above (ours, optimized). Error of the model's total:", "",
              "| cpu | model | counted | predicted (in fit) | error | predicted (left out) "
              "| error |", "|---|---|---|---|---|---|---|"]
    for cpu, rows in lat["validation"].items():
        for v in rows:
            left = (f"{v['predicted_left_out']:,} | {100 * v['error_left_out']:+.1f} %"
                    if "predicted_left_out" in v else " | ")
            lines.append(f"| {cpu} | {v['model']} | {v['counted']:,} | "
                         f"{v['predicted_in_fit']:,} | {100 * v['error_in_fit']:+.1f} % "
                         f"| {left} |")
    lines += ["", f"Claims broken: {len(doc['problems'])}."]
    lines += [f"- {p}" for p in doc["problems"]]
    lines += ["", f"Linear kernels on M7 (target {TARGET_LINEAR_MPI} MAC/instruction, "
              "reported, not gated): " + ", ".join(
                  f"{k['name']} {k['macs_per_instruction']:.2f}" for k in doc["kernels"]
                  if k["cpu"] == "cortex-m7" and k["variant"] == "optimized"
                  and k["kind"] in LINEAR_KINDS) + ".",
              "", "Stock TFLM on the same models' linear layers, for comparison: " + ", ".join(
                  f"{k['name']} {k['variant']} {k['macs_per_instruction']:.2f}"
                  for k in doc["stock_kernels"] if k["cpu"] == "cortex-m7") + "."]
    path.write_text("\n".join(lines) + "\n")


def plot(doc: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in doc["models"] if r["cpu"] == "cortex-m7"]
    names = sorted({r["name"] for r in rows}, key=[r["name"] for r in rows].index)
    variants = ("stock_reference", "stock_cmsis_nn", "ours")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.27
    for i, v in enumerate(variants):
        vals = [next((r["instructions"] / 1e6 for r in rows
                      if r["name"] == n and r["variant"] == v), 0) for n in names]
        ax.bar(np.arange(len(names)) + (i - 1) * width, vals, width, label=v)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_ylabel("million instructions / inference (M7)")
    ax.set_title("Per model")
    ax.legend()
    ks = [k for k in doc["kernels"] if k["cpu"] == "cortex-m7"]
    labels = sorted({k["name"] for k in ks}, key=[k["name"] for k in ks].index)
    for i, v in enumerate(("naive", "optimized")):
        vals = [next((k["macs_per_instruction"] for k in ks
                      if k["name"] == n and k["variant"] == v), 0) for n in labels]
        bx.barh(np.arange(len(labels)) + (i - 0.5) * 0.4, vals, 0.4, label=v)
    bx.set_yticks(np.arange(len(labels)), labels, fontsize=7)
    bx.axvline(TARGET_LINEAR_MPI, color="k", ls=":", lw=1)
    bx.set_xlabel("MACs per instruction (M7)")
    bx.set_title("Our kernels")
    bx.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demo-steps", type=int, default=on_target.DEMO_STEPS)
    p.add_argument("--only", choices=["R0"],
                   help="R0 on M7 only, printed as JSON; committed files left alone")
    a = p.parse_args(argv)
    origin = stamp("speed.py", argv)  # the code that runs, before anything else changes
    ms = models(a.only, a.demo_steps)
    cpus = ("cortex-m7",) if a.only else ("cortex-m7", "cortex-m4")
    model_rows, kernels, stock_kernels = [], [], []
    op_rows, agree = {c: [] for c in cpus}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for cpu in cpus:
            builds = {k: qemu.build(cpu, k) for k in qemu.KERNELS}
            plan = [("stock_reference", "reference", "stock"),
                    ("stock_cmsis_nn", "cmsis_nn", "stock"),
                    ("ours", "cmsis_nn", "planned"), ("naive", "reference", "planned")]
            if cpu != "cortex-m7":  # M4: our kernels only
                plan = plan[2:]
            for m in ms:
                for variant, kernels_set, model_variant in plan:
                    if m.variant != model_variant:
                        continue
                    r = _run(builds[kernels_set], m, tmp)
                    c = r["counts"]
                    agree[f"{m.name} {variant} on {cpu}"] = (
                        r["output"] == on_target.wheel_output(m))
                    print(f"{cpu} {m.name} {variant}: {c.total:,}", file=sys.stderr)
                    rows = _op_rows(m, c)
                    if variant == "naive":
                        kernels += kernel_rows(m.name, rows, cpu, "naive")
                        continue
                    if variant == "ours":
                        kernels += kernel_rows(m.name, rows, cpu, "optimized")
                        op_rows[cpu] += rows
                    else:  # the same layers' int8 matrix work in stock TFLM, beside ours
                        stock_kernels += kernel_rows(m.name, rows, cpu, variant, STOCK_KINDS)
                    model_rows.append({"name": m.name, "cpu": cpu, "variant": variant,
                                       "instructions": c.total, "arena": r["arena"],
                                       "per_op": c.per_kind()})
    lat = {"features": "instructions = a * macs + b * elements + c per op kind",
           "coefficients": {cpu: {"kinds": fit(rows)} for cpu, rows in op_rows.items()},
           "validation": {cpu: validate(rows) for cpu, rows in op_rows.items()}}
    doc = {**origin, "problems": problems(model_rows, agree),
           "models": model_rows, "kernels": kernels, "stock_kernels": stock_kernels,
           "latency_model": lat}

    def write_rest():
        (RESULTS / "kernel_speed.json").write_text(json.dumps(
            {"commit": doc["commit"], "command": doc["command"], "kernels": kernels,
             "stock_kernels": stock_kernels}, indent=1) + "\n")
        (REPO / "tflm_vit" / latency.COEFFICIENTS.name).write_text(json.dumps(
            {"commit": doc["commit"], "command": doc["command"],
             "targets": lat["coefficients"]}, indent=1) + "\n")
        write_table(doc, RESULTS / "speed.md")
        plot(doc, RESULTS / "speed.png")
    return publish(doc, "model_speed", bool(a.only), write_rest)


if __name__ == "__main__":
    sys.exit(main())
