"""The search against its baselines on Fashion-MNIST, at two SRAM budgets the default
space's largest subnet does not meet, over several seeds, at equal search cost.

For each (budget, seed): MCUFormer's search (tflm_vit.search.run) first, then each
baseline (tflm_vit.search.baselines) given the search's own cost: its supernet training
steps and its number of subnet evaluations. Every chosen model is deployed (converted and
planned for the x86-64 wheel's TFLM, so the arena is the one measured there) and its test
top-1 measured in TFLM.

Writes bench/results/search.json ({"commit", "command", "settings", "runs": [{"method",
"sram_budget", "flash_budget", "top1", "measured_arena", "flash", "seed", "config", ...}],
"summary", "problems"}; a baseline whose space has no subnet within the budget has a row
with top1 null and "infeasible" saying why), search.md and search.png, and exits non-zero
when a claim is
false: a chosen model's measured arena above its budget, or the search's mean test top-1
below a baseline's at a budget. Every chosen ViT also runs on the emulated Cortex-M7
(TFLM + CMSIS-NN with our ops, under QEMU) in an arena of exactly its budget, with the
wheel's output ("arena_cortex_m7" in its row); a model that does not is a false claim too.

Work folders (resumable; a finished (budget, seed) is not redone, and records the commit
it ran at) live in build/bench_search/<scale>/, with one architecture-cost cache for every
method (a cost depends only on the architecture and the target). The committed scale is
sized to fit in 3 hours on 2 CPU cores (each run's seconds are recorded); --full gives
MCUFormer's scale.

Run: .venv/bin/python bench/search.py [--seeds 3] [--full] [--smoke]   (or: make bench)
     .venv/bin/python bench/search.py --recost   (the committed seed-0 models re-costed)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO / "bench"))
from provenance import publish, stamp  # noqa: E402

from tflm_vit.errors import BudgetError  # noqa: E402
from tflm_vit.search import cnn_baseline  # noqa: E402
from tflm_vit.search.baselines import METHODS, run_baseline  # noqa: E402
from tflm_vit.search.budgets import Budgets  # noqa: E402
from tflm_vit.search.evolution import EvolutionSettings  # noqa: E402
from tflm_vit.search.run import SearchSettings, run_search  # noqa: E402
from tflm_vit.search.space_evolution import EvolutionOfSpaceSettings  # noqa: E402
from tflm_vit.space import DEFAULT_SPACE, SearchSpace  # noqa: E402

SRAM_BUDGETS = (12 * 1024, 18 * 1024)  # the largest default subnet needs more than both
FLASH_BUDGET = 1024 * 1024
WORK = REPO / "build" / "bench_search"


def settings(scale: str) -> SearchSettings:
    if scale == "full":  # MCUFormer / AutoFormer defaults
        return SearchSettings(EvolutionOfSpaceSettings(initial_points=5, rounds=10,
                                                       steps_per_round=2000, samples=20),
                              EvolutionSettings(population=50, generations=20),
                              supernet_steps=20000, finetune_steps=2000, val_images=6000)
    if scale == "smoke":  # minutes: checks the script end to end, proves nothing
        return SearchSettings(EvolutionOfSpaceSettings(initial_points=2, rounds=1,
                                                       steps_per_round=20, samples=2),
                              EvolutionSettings(population=4, generations=2),
                              supernet_steps=20, finetune_steps=10, val_images=100)
    return SearchSettings(EvolutionOfSpaceSettings(initial_points=2, rounds=2,
                                                   steps_per_round=100, samples=6),
                          EvolutionSettings(population=10, generations=3),
                          supernet_steps=300, finetune_steps=100, val_images=1000)


def fashion_space(data=None) -> SearchSpace:
    """The default space for Fashion-MNIST's images and classes (read from `data`, or
    its known 1 channel and 10 classes)."""
    channels, classes = (data.channels, data.num_classes) if data else (1, 10)
    return SearchSpace.from_dict({**DEFAULT_SPACE.to_dict(), "in_channels": channels,
                                  "num_classes": classes})


def _row(method, budgets, seed, config, acc, deployment, cost, extra) -> dict:
    return {"method": method, "sram_budget": budgets.sram, "flash_budget": budgets.flash,
            "top1": acc.top1, "float_top1": acc.float_top1,
            "measured_arena": acc.arena_measured, "arena_to_give": deployment.arena_size,
            "flash": deployment.flash, "seed": seed,
            "config": json.loads(config.to_json()), **cost, **extra}


def _no_model(method: str, budgets, seed: int, error: BudgetError) -> dict:
    """The row of a method that has no model at a budget, saying why."""
    return {"method": method, "sram_budget": budgets.sram, "flash_budget": budgets.flash,
            "top1": None, "measured_arena": None, "flash": None, "seed": seed,
            "config": None, "infeasible": str(error)}


def run_one(base, data, budgets, seed, s: SearchSettings, scale: str, say, at: str,
            jobs=None) -> list[dict]:
    """Ours, then every baseline at ours' cost, at one (budget, seed); the rows are kept in
    the work folder, each with `at`, the commit of the code this process runs (stamped
    when it started: later commits in the checkout do not change the code it loaded),
    and its seconds."""
    import time
    work = WORK / scale / f"sram{budgets.sram}_seed{seed}"
    done = work / "rows.json"
    if done.exists():
        kept = json.loads(done.read_text())
        if kept["settings"] == json.loads(json.dumps(s.to_dict())):
            return kept["rows"]
        say(f"{done}: other settings; running again")
    cache = str(WORK / scale / f"costs_{budgets.target}.jsonl")
    # Time across interruptions: the seconds spent so far are saved at every progress
    # line, so a resumed (budget, seed) counts its earlier attempts up to their last
    # progress line (the work they cached is not redone, and is not left uncounted).
    clock = work / "elapsed.json"
    before = json.loads(clock.read_text())["seconds"] if clock.exists() else 0.0
    start = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)

    def elapsed() -> float:
        return before + time.monotonic() - start

    report = say

    def say(text):  # every progress line also saves the time spent
        clock.write_text(json.dumps({"seconds": round(elapsed(), 1)}))
        report(text)

    ours = run_search(base, data, budgets, str(work / "mcuformer"), s, seed, say, jobs, cache)
    steps, evaluations = ours.search_cost["training_steps"], ours.search_cost["evaluations"]
    rows = [_row("mcuformer", budgets, seed, ours.config, ours.accuracy, ours.deployment,
                 ours.search_cost, {"space": ours.space_point["description"]})]
    for method in METHODS:
        try:
            r = run_baseline(method, base, data, budgets, str(work / method), steps,
                             evaluations, s, seed, say, jobs, cache)
        except BudgetError as e:  # e.g. the largest space at a tight budget: no model
            rows.append(_no_model(method, budgets, seed, e))
            continue
        rows.append(_row(method, budgets, seed, r.evolution.best.config, r.accuracy,
                         r.deployment, {"training_steps": r.training_steps,
                                        "evaluations": r.evaluations}, {"space": r.space}))
    seconds = round(elapsed(), 1)
    rows = [{**r, "commit": at, "run_seconds": seconds} for r in rows]
    done.write_text(json.dumps({"settings": s.to_dict(), "rows": rows}, indent=1))
    return rows


CNN = "mobilenetv2_cnn"  # reported beside the others, never gating


def cnn_row(data, budgets, seed, steps: int, scale: str, say, at: str) -> dict:
    """MCUNet's MobileNetV2-like CNN at one (budget, seed), trained as many steps as the
    search trained supernets and fine-tuned its winner in all (kept in the work folder,
    as the search's rows are)."""
    import time
    path = WORK / scale / f"cnn_sram{budgets.sram}_seed{seed}.json"
    kept = json.loads(path.read_text()) if path.exists() else None
    if kept and kept["training_steps"] == steps:
        return kept
    members = WORK / scale / "cnn_members.json"  # architecture -> MACs, flash, arena
    cache = json.loads(members.read_text()) if members.exists() else {}
    start, cpu = time.monotonic(), time.process_time()
    try:
        config = cnn_baseline.choose(budgets, data.channels, data.num_classes, cache)
    except BudgetError as e:
        row = _no_model(CNN, budgets, seed, e)
    else:
        members.write_text(json.dumps(cache))
        say(f"{CNN}: training {config.short()} {steps} steps")
        row = {**cnn_baseline.train_and_measure(config, data, steps, seed),
               "config": dataclasses.asdict(config)}
    row = {"method": CNN, "sram_budget": budgets.sram, "flash_budget": budgets.flash,
           "seed": seed, "training_steps": steps, "gating": False, **row,
           "commit": at, "run_seconds": round(time.monotonic() - start, 1),
           "cpu_seconds": round(time.process_time() - cpu, 1)}
    path.write_text(json.dumps(row, indent=1))
    return row


def hours(runs: list[dict]) -> float:
    """The time of the whole benchmark: the wall time of every (budget, seed) search and
    its baselines, as measured when it ran, plus the CNN rows' CPU time (all threads: on
    2 cores an upper bound of their wall time alone, whatever else ran beside them)."""
    per_run = {(r["sram_budget"], r["seed"]): r["run_seconds"] for r in runs
               if r["method"] != CNN}
    cnn = sum(r["cpu_seconds"] for r in runs if r["method"] == CNN)
    return round((sum(per_run.values()) + cnn) / 3600, 2)


def summary(runs: list[dict]) -> list[dict]:
    import numpy as np
    out = []
    for b in sorted({r["sram_budget"] for r in runs}):
        for m in ["mcuformer", *METHODS, CNN]:
            rows = [r for r in runs if r["sram_budget"] == b and r["method"] == m]
            top = [r["top1"] for r in rows if r["top1"] is not None]
            if rows:  # a method with no model that fits at a budget has no mean
                out.append({"sram_budget": b, "method": m, "seeds": len(top),
                            "infeasible_seeds": len(rows) - len(top),
                            "mean_top1": float(np.mean(top)) if top else None,
                            "std_top1": float(np.std(top)) if top else None})
    return out


def problems(runs: list[dict], summ: list[dict]) -> list[str]:
    out = [f"{r['method']} seed {r['seed']} at {r['sram_budget']:,} B: measured arena "
           f"{r['measured_arena']:,} B is over the budget"
           for r in runs if r["measured_arena"] is not None
           and r["measured_arena"] > r["sram_budget"]]
    out += [f"the search found no model at {r['sram_budget']:,} B, seed {r['seed']}"
            for r in runs if r["method"] == "mcuformer" and r["top1"] is None]
    for b in sorted({s["sram_budget"] for s in summ}):
        ours = next(s for s in summ if s["sram_budget"] == b and s["method"] == "mcuformer")
        for s in summ:
            if (s["sram_budget"] == b and s["mean_top1"] is not None and s["method"] != CNN
                    and ours["mean_top1"] is not None and s["mean_top1"] > ours["mean_top1"]):
                out.append(f"at {b:,} B the search's mean test top-1 {ours['mean_top1']:.4f} "
                           f"is below {s['method']}'s {s['mean_top1']:.4f}")
    return out


def write_table(doc: dict, path: pathlib.Path) -> None:
    lines = [f"# Search vs baselines on Fashion-MNIST (commit {doc['commit']})", "",
             f"`{doc['command']}`; scale `{doc['scale']}`, seeds {doc['seeds']}; arena "
             "budgets on the x86-64 wheel's TFLM, where the arenas are measured; "
             f"{doc['hours_in_all']} h of runs in all on this machine (runs computed at "
             f"commits {', '.join(sorted({r['commit'] for r in doc['runs']}))}).", "",
             "| SRAM budget | method | seeds | mean test top-1 (int8, TFLM) | std |",
             "|---|---|---|---|---|"]
    for s in doc["summary"]:
        if s["mean_top1"] is None:
            lines.append(f"| {s['sram_budget']:,} | {s['method']} | 0 | no subnet of its "
                         "space fits | |")
            continue
        name = s["method"] + (" (report only)" if s["method"] == CNN else "")
        lines.append(f"| {s['sram_budget']:,} | {name} | {s['seeds']} | "
                     f"{s['mean_top1']:.4f} | {s['std_top1']:.4f} |")
    lines += ["", "Measured arena: TFLM's in the wheel (the deployed model, in the run); on M7: "
              "TFLM's on the emulated Cortex-M7 with CMSIS-NN and our ops (QEMU), run in an "
              "arena of exactly the budget by this commit's script, the model rebuilt from "
              "its config on shape-only weights (the arena does not depend on weight "
              "values); the CNN's stock ops are not in our firmware runner.", "",
              "| SRAM budget | seed | method | top-1 | measured arena | on M7 | flash "
              "| subnet |", "|---|---|---|---|---|---|---|---|"]
    from tflm_vit.config import SubnetConfig
    for r in doc["runs"]:
        if r["top1"] is None:
            lines.append(f"| {r['sram_budget']:,} | {r['seed']} | {r['method']} | – | – | – "
                         f"| – | {r['infeasible']} |")
            continue
        short = (cnn_baseline.CnnConfig(**r["config"]).short() if r["method"] == CNN
                 else SubnetConfig.from_dict(r["config"]).short())
        m7 = f"{r['arena_cortex_m7']:,}" if r.get("arena_cortex_m7") else "–"
        lines.append(f"| {r['sram_budget']:,} | {r['seed']} | {r['method']} | "
                     f"{r['top1']:.4f} | {r['measured_arena']:,} | {m7} | {r['flash']:,} "
                     f"| {short} |")
    lines += ["", "Claims checked (the script exits non-zero otherwise): every measured arena "
              "within its budget; every chosen ViT runs on the emulated Cortex-M7 in its "
              "budget, with the wheel's output; the search's mean top-1 at least each "
              f"baseline's (the {CNN} rows, MCUNet's MobileNetV2-like CNN on stock TFLM at "
              "the same budgets and as many training steps as the search took in all, are "
              "reported, not gated); the committed scale within 3 hours.",
              *[f"- FAIL {p}" for p in doc["problems"]], ""]
    path.write_text("\n".join(lines))


def plot(doc: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    budgets = sorted({s["sram_budget"] for s in doc["summary"]})
    methods = ["mcuformer", *METHODS, CNN]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        rows = [next((s for s in doc["summary"] if s["sram_budget"] == b and s["method"] == m
                      and s["mean_top1"] is not None), None) for b in budgets]
        xs = [j + i * width for j, r in enumerate(rows) if r]
        ax.bar(xs, [r["mean_top1"] for r in rows if r], width,
               yerr=[r["std_top1"] for r in rows if r], label=m)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(budgets))],
                  [f"{b // 1024} KB" for b in budgets])
    lo = min(s["mean_top1"] for s in doc["summary"] if s["mean_top1"] is not None)
    ax.set_ylim(max(0.0, lo - 0.05), 1.0)
    ax.set_ylabel("test top-1, int8 in TFLM")
    ax.set_xlabel("arena budget")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


M7 = ("cortex-m7", "cmsis_nn")  # the firmware build the chosen ViTs run in


def on_cortex_m7(runs: list[dict], say) -> list[str]:
    """Every chosen ViT on the emulated Cortex-M7: TFLM with CMSIS-NN and our ops, the
    firmware's model runner under QEMU (custom_ops/firmware/qemu.py), in an arena of
    exactly its SRAM budget. The budgets are arenas on the wheel's TFLM, where the search
    measures; TFLM on the M7 needs less (its structs are smaller). The model is rebuilt
    from the row's config on shape-only weights, as the cost model builds it: an arena
    does not depend on the weights' values (the tests hold the cost model to the deployed
    models). Sets each row's arena_cortex_m7 (TFLM's arena_used_bytes on the M7) and
    returns a line for each model that does not run there within its budget, or whose
    output differs from the wheel's on the same seeded input."""
    import tempfile

    import numpy as np

    import firmware  # bench/firmware.py: the runner's output, and qemu
    from tflm_vit.config import SubnetConfig
    from tflm_vit.search.costs import shape_net, shape_only_model
    net = shape_net(fashion_space())
    build = firmware.qemu.build(*M7)
    measured, out = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        path, inp = pathlib.Path(tmp) / "model.tflite", pathlib.Path(tmp) / "input.bin"
        for r in runs:
            if r["method"] == CNN or r["config"] is None:  # the CNN: stock ops we do not
                continue                                   # register in the runner
            config = SubnetConfig.from_dict(r["config"])
            key = (config.to_json(), r["sram_budget"])
            if key not in measured:
                say(f"on the emulated Cortex-M7: {config.short()} in {r['sram_budget']:,} B")
                model = bytes(shape_only_model(net, config, "wheel").model)
                image = np.random.default_rng(0).integers(
                    -128, 128, (config.resolution, config.resolution, net.space.in_channels),
                    dtype=np.int8)
                path.write_bytes(model)
                inp.write_bytes(image.tobytes())
                run = firmware.qemu.run(build.model_runner, build.cpu,
                                        [path, inp, r["sram_budget"]])
                if run.returncode == 0 and "TFLM_VIT_RUN_PASS" in run.output:
                    got, used = firmware._parse(run.output)
                    wheel = firmware.wheel_output(firmware.Model(r["method"], "planned",
                                                                 model, image))
                    measured[key] = (used, got == wheel)
                else:
                    measured[key] = (None, False)
            used, same = measured[key]
            r["arena_cortex_m7"] = used
            what = f"{r['method']} seed {r['seed']} at {r['sram_budget']:,} B ({config.short()})"
            if used is None:
                out.append(f"{what} does not run on the emulated Cortex-M7 in its budget")
            elif not same:
                out.append(f"{what}: its output on the emulated Cortex-M7 differs from the "
                           "wheel's")
    return out


def recost(seeds: tuple[int, ...] = (0,)) -> dict:
    """The committed table's chosen models of `seeds`, re-costed from their configs alone
    (the cost model: export -> convert -> plan on shape-only weights): the arena to give
    and the flash must be the committed (trained, deployed) models' own, and the arena on
    the emulated Cortex-M7 the committed one; the CNN members, re-measured in TFLM, their
    arena."""
    from tflm_vit.config import SubnetConfig
    from tflm_vit.search.costs import CostModel
    committed = json.loads((RESULTS / "search.json").read_text())
    costs = CostModel(fashion_space(), target="wheel")
    chosen = [r for r in committed["runs"] if r["seed"] in seeds and r["top1"] is not None]
    again = [{**r, "arena_cortex_m7": None} for r in chosen]
    out = on_cortex_m7(again, lambda text: None)
    rows = []
    for r, m7 in zip(chosen, again):
        if r["method"] == CNN:
            m = cnn_baseline.measure_member(cnn_baseline.CnnConfig(**r["config"]), 1, 10)
            # the arena only: the member was chosen by it, and the trained CNN's flash
            # differs from the shape-only member's (808 of 26,472 bytes on one)
            got = {"measured_arena": m["arena"]}
        else:
            c = costs.cost(SubnetConfig.from_dict(r["config"]))
            got = {"arena_to_give": c.sram, "flash": c.flash,
                   "arena_cortex_m7": m7["arena_cortex_m7"]}
        row = {"method": r["method"], "sram_budget": r["sram_budget"], "seed": r["seed"], **got}
        rows.append(row)
        out += [f"{r['method']} seed {r['seed']} at {r['sram_budget']:,} B: {k} {v} "
                f"re-costed, {r.get(k)} committed" for k, v in got.items() if v != r.get(k)]
    return {"rows": rows, "problems": out}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--full", action="store_true", help="MCUFormer's scale (days)")
    scale.add_argument("--smoke", action="store_true",
                       help="tiny settings, printed only: checks the script runs")
    p.add_argument("--ray-address", help="run the jobs on this Ray cluster")
    p.add_argument("--no-ray", action="store_true", help="run every job in this process")
    p.add_argument("--recost", action="store_true",
                   help="re-cost the committed table's seed-0 models from their configs "
                        "and print (a cheap check that the code still gives its figures)")
    a = p.parse_args(argv)
    origin = stamp("search.py", argv)
    if a.recost:
        return publish({**origin, **recost()}, "search", True, None)
    name = "full" if a.full else "smoke" if a.smoke else "committed"
    s = settings(name)
    from tflm_vit.data import load_fashion_mnist
    data = load_fashion_mnist(DEFAULT_SPACE.max_resolution)
    if a.smoke:  # a slice, so the smoke run takes minutes
        data = dataclasses.replace(data, x_train=data.x_train[:3000],
                                   y_train=data.y_train[:3000], x_test=data.x_test[:300],
                                   y_test=data.y_test[:300])
    base = fashion_space(data)

    def say(text):
        print(text, file=sys.stderr, flush=True)

    from tflm_vit.search.parallel import executor
    runs = []
    with executor(a.ray_address, use_ray=not a.no_ray) as jobs:
        for sram in SRAM_BUDGETS:
            budgets = Budgets(sram=sram, flash=FLASH_BUDGET, target="wheel")
            for seed in range(a.seeds):
                say(f"== budget {sram:,} B, seed {seed}")
                rows = run_one(base, data, budgets, seed, s, name, say, origin["commit"], jobs)
                ours = next(r for r in rows if r["method"] == "mcuformer")
                runs += rows + [cnn_row(data, budgets, seed, ours["training_steps"]
                                        + s.finetune_steps, name, say, origin["commit"])]
    on_target = on_cortex_m7(runs, say)
    summ = summary(runs)
    doc = {**origin, "scale": name, "seeds": a.seeds, "settings": s.to_dict(),
           "hours_in_all": hours(runs), "runs": runs, "summary": summ,
           "problems": problems(runs, summ) + on_target}
    if name == "committed" and a.seeds <= 3 and doc["hours_in_all"] > 3:
        doc["problems"].append(f"the committed scale took {doc['hours_in_all']} h, over 3 h")
    return publish(doc, "search", a.smoke, lambda: (write_table(doc, RESULTS / "search.md"),
                                                    plot(doc, RESULTS / "search.png")))


if __name__ == "__main__":
    sys.exit(main())
