"""The search against its baselines on Fashion-MNIST, at three boards where the budgets
bind (a small Cortex-M4 part, a mid one, and MCUFormer's STM32F746), over several
seeds, at equal search cost, every winner trained to convergence with the same recipe.

For each (board, seed): MCUFormer's search (tflm_vit.search.run) first, then each
baseline (tflm_vit.search.baselines) given the search's own cost: its supernet training
steps and its number of subnet evaluations; every method's winner then trains on its own
with the same recipe, teacher and epochs. Beside them, not gating: MCUNet's CNN (the
MobileNetV2-like member with the most MACs that fits, trained with the same recipe and
epochs) and two floors, logistic regression and an MLP (search/floors.py). Every accuracy
is the int8 model in TFLM on the full test set (10,000 images). The budgets are the
board's (search/boards.py: arena on TFLM's Cortex-M build with CMSIS-NN, flash less our
firmware, latency in ms at its clock as instructions).

Writes bench/results/search.json ({"commit", "command", "settings", "boards", "runs":
[{"method", "board", "sram_budget", "flash_budget", "latency_budget", "top1",
"float_top1", "measured_arena", "arena_to_give", "flash", "instructions", "epochs",
"train_seconds", "seed", "config", ...}], "summary", "problems"}), search.md and
search.png, and exits non-zero when a claim is false: a chosen ViT over a budget (its
arena to give, its flash, its instructions counted on the board's emulated CPU), a
chosen ViT that does not run on the emulated CPU (TFLM + CMSIS-NN with our ops, QEMU) in
exactly its arena with the wheel's output, the search's mean test top-1 below a
baseline's at a board, or below its target (0.88 on the small board, 0.90 on the others).

Each finished method's row is kept at once in bench/results/search_cells/<scale>/
(committed: the benchmark takes about 40 hours on 2 cores, longer than a machine lives,
so a fresh clone resumes from the methods kept there, never running one again); it
records the commit it ran at and its seconds. Work in progress (checkpoints, the
architecture-cost cache of each board target, clocks) lives in build/bench_search/<scale>/
and resumes an interrupted method on the same machine. --full gives MCUFormer's scale.

Run: .venv/bin/python bench/search.py [--seeds 3] [--boards stm32f401,...] [--full] [--smoke]
     .venv/bin/python bench/search.py --finished   (what is finished so far, nothing run)
     .venv/bin/python bench/search.py --recost   (the committed seed-0 models re-costed)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

from provenance import publish, stamp  # bench/provenance.py, beside this script

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

from tflm_vit.errors import BudgetError  # noqa: E402
from tflm_vit.search import cnn_baseline, floors  # noqa: E402
from tflm_vit.search.baselines import METHODS, baseline_key, run_baseline  # noqa: E402
from tflm_vit.search.boards import board as find_board  # noqa: E402
from tflm_vit.search.evolution import EvolutionSettings  # noqa: E402
from tflm_vit.search.run import SearchSettings, run_search  # noqa: E402
from tflm_vit.search.space_evolution import EvolutionOfSpaceSettings  # noqa: E402
from tflm_vit.space import SearchSpace, space_for_data  # noqa: E402
from tflm_vit.twins import options  # noqa: E402

BOARDS = ("stm32f401", "stm32f411", "stm32f746")  # small, mid, MCUFormer's
TARGET_TOP1 = {"stm32f401": 0.88, "stm32f411": 0.90, "stm32f746": 0.90}
WORK = REPO / "build" / "bench_search"  # work in progress: checkpoints, caches, clocks
CELLS = RESULTS / "search_cells"  # finished rows (store())


def settings(scale: str) -> SearchSettings:
    if scale == "full":  # MCUFormer / AutoFormer defaults
        return SearchSettings(EvolutionOfSpaceSettings(initial_points=5, rounds=10,
                                                       epochs_per_round=2, samples=20),
                              EvolutionSettings(population=50, generations=20),
                              supernet_epochs=20, finetune_epochs=100, val_images=6000)
    if scale == "smoke":  # minutes: checks the script end to end, proves nothing
        return SearchSettings(EvolutionOfSpaceSettings(initial_points=2, rounds=1,
                                                       epochs_per_round=0.05, samples=2),
                              EvolutionSettings(population=4, generations=2),
                              supernet_epochs=0.05, finetune_epochs=1, val_images=100,
                              teacher=False)
    return SearchSettings()  # what `tflm-vit search` does by default


def fashion_space(data=None) -> SearchSpace:
    """The default space for Fashion-MNIST (its 28 px images, 1 channel, 10 classes)."""
    if data is None:
        return space_for_data(28, 1, 10)
    return space_for_data(data.resolution, data.channels, data.num_classes)


def _budget_fields(board, budgets) -> dict:
    return {"board": board.name, "cpu": board.cpu, "target": budgets.target,
            "sram_budget": budgets.sram, "flash_budget": budgets.flash,
            "latency_budget": budgets.latency}


def _row(method, board, budgets, seed, config, acc, deployment, cost, training,
         extra) -> dict:
    return {"method": method, **_budget_fields(board, budgets),
            "top1": acc.top1, "float_top1": acc.float_top1,
            "measured_arena": acc.arena_measured, "arena_to_give": deployment.arena_size,
            "flash": deployment.flash, "instructions": None, "seed": seed,
            "epochs": training.epochs, "train_seconds": training.seconds,
            "options_version": options.VERSION, "constant_quantization": False,
            "config": json.loads(config.to_json()), **cost, **extra}


def _no_model(method: str, board, budgets, seed: int, error: BudgetError) -> dict:
    """The row of a method that has no model at a board, saying why."""
    return {"method": method, **_budget_fields(board, budgets), "top1": None,
            "measured_arena": None, "flash": None, "seed": seed, "config": None,
            "infeasible": str(error)}


class _Clock:
    """Time across interruptions: the seconds spent so far are saved at every progress
    line, so a resumed run counts its earlier attempts up to their last progress line
    (the work they cached is not redone, and is not left uncounted)."""

    def __init__(self, path: pathlib.Path, say):
        import time
        self.path, self.report, self.time = path, say, time
        self.before = json.loads(path.read_text())["seconds"] if path.exists() else 0.0
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return self.before + self.time.monotonic() - self.start

    def __call__(self, text):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"seconds": round(self.elapsed(), 1)}))
        self.report(text)


def store(scale: str) -> pathlib.Path:
    """Where finished rows are kept, one file a (board, seed, method): for the published
    scales committed beside the results (bench/results/search_cells/<scale>/), because
    the benchmark outlasts a machine (about 40 hours on 2 cores): whoever runs it next,
    on a fresh clone, resumes from the methods already there; for --smoke the work
    folder."""
    return WORK / scale if scale == "smoke" else CELLS / scale


def _kept(path: pathlib.Path, s: SearchSettings) -> dict | None:
    """The row kept at `path` when it was made at settings `s`."""
    if not path.exists():
        return None
    kept = json.loads(path.read_text())
    return kept["row"] if kept["settings"] == json.loads(json.dumps(s.to_dict())) else None


def _keep(path: pathlib.Path, s: SearchSettings, row: dict) -> dict:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")  # never half a file: a row is there whole or not at all
    tmp.write_text(json.dumps({"settings": s.to_dict(), "row": row}, indent=1))
    tmp.replace(path)
    return row


def run_one(base, data, board, seed, s: SearchSettings, scale: str, say, at: str,
            jobs=None, finished_only: bool = False) -> list[dict] | None:
    """Ours, then every baseline at ours' cost, at one (board, seed). Each method's row
    is kept (store()) as soon as it is finished, with `at`, the commit of the code this
    process runs (stamped when it started: later commits in the checkout do not change
    the code it loaded), and its seconds; a kept method is not run again. A baseline
    whose run (space and search: baselines.baseline_key) a kept row's is, is that row,
    named as such, not a second identical run. finished_only: the rows when every method
    is kept, else None (nothing is run)."""
    budgets = board.budgets()
    cell = store(scale) / f"{board.name}_seed{seed}"
    methods = ("mcuformer", *METHODS)
    rows = {m: _kept(cell / f"{m}.json", s) for m in methods}
    if all(rows.values()) or finished_only:
        return [rows[m] for m in methods] if all(rows.values()) else None
    work = WORK / scale / f"{board.name}_seed{seed}"
    cache = str(WORK / scale / f"costs_{budgets.target}_{budgets.cpu}.jsonl")
    work.mkdir(parents=True, exist_ok=True)
    if rows["mcuformer"] is None:
        clock = _Clock(work / "mcuformer.elapsed.json", say)
        ours = run_search(base, data, budgets, str(work / "mcuformer"), s, seed, clock, jobs,
                          cache)
        rows["mcuformer"] = _keep(cell / "mcuformer.json", s, {
            **_row("mcuformer", board, budgets, seed, ours.config, ours.accuracy,
                   ours.deployment, ours.search_cost, ours.training,
                   {"space": ours.space_point["description"],
                    "predicted_instructions": ours.evolution.best.cost.latency}),
            "commit": at, "run_seconds": round(clock.elapsed(), 1)})
    steps, evaluations = rows["mcuformer"]["training_steps"], rows["mcuformer"]["evaluations"]
    for method in METHODS:
        if rows[method]:
            continue
        clock = _Clock(work / f"{method}.elapsed.json", say)
        try:
            key = baseline_key(method, base, data, budgets, steps, evaluations, cache, s,
                               seed, jobs)
        except BudgetError as e:  # e.g. the largest space at a tight budget: no model
            row = _no_model(method, board, budgets, seed, e)
        else:
            first = next((r for r in rows.values() if r and r.get("run_key") == key), None)
            if first:
                clock(f"{method}: the same space and search as {first['method']}: its run")
                row = {**first, "method": method, "same_run_as": first["method"]}
            else:
                r = run_baseline(method, base, data, budgets, str(work / method), steps,
                                 evaluations, s, seed, clock, jobs, cache)
                row = _row(method, board, budgets, seed, r.evolution.best.config, r.accuracy,
                           r.deployment, {"training_steps": r.training_steps,
                                          "evaluations": r.evaluations}, r.training,
                           {"space": r.space, "run_key": r.key,
                            "predicted_instructions": r.evolution.best.cost.latency})
        rows[method] = _keep(cell / f"{method}.json", s, {
            **row, "commit": at, "run_seconds": round(clock.elapsed(), 1)})
    return [rows[m] for m in methods]


CNN = "mobilenetv2_cnn"  # reported beside the others, never gating
REPORTED = (CNN, *floors.FLOORS)  # beside the search, not gating


def _teacher(data, s: SearchSettings, seed: int, say):
    from tflm_vit.search.run import validation_set
    from tflm_vit.teacher import teacher_for
    train, val = validation_set(data, s, seed)
    teacher = teacher_for(train, val.x_test, val.y_test, say=say) if s.teacher else None
    return train, val, teacher


def cnn_row(data, board, seed, s: SearchSettings, scale: str, say, at: str,
            finished_only: bool = False) -> dict | None:
    """MCUNet's MobileNetV2-like CNN at one (board, seed): the member with the most MACs
    that fits the board, trained with the search's recipe, teacher and final epochs."""
    budgets = board.budgets()
    path = store(scale) / f"{board.name}_seed{seed}" / f"{CNN}.json"
    kept = _kept(path, s)
    if kept or finished_only:
        return kept
    members = WORK / scale / "cnn_members.json"  # architecture -> MACs, flash, arena
    cache = json.loads(members.read_text()) if members.exists() else {}
    say = _Clock(WORK / scale / f"cnn_{board.name}_seed{seed}.elapsed.json", say)
    try:
        config = cnn_baseline.choose(budgets, data.channels, data.num_classes, cache)
    except BudgetError as e:
        row = _no_model(CNN, board, budgets, seed, e)
    else:
        members.parent.mkdir(parents=True, exist_ok=True)
        members.write_text(json.dumps(cache))
        train, val, teacher = _teacher(data, s, seed, say)
        say(f"{CNN}: training {config.short()} up to {s.finetune_epochs} epochs")
        row = {**cnn_baseline.train_and_measure(
            config, train, val, data.x_test, data.y_test, s.finetune_epochs, s.recipe,
            teacher, seed, str(WORK / scale / f"cnn_{board.name}_seed{seed}"), say),
               "config": dataclasses.asdict(config)}
    return _keep(path, s, {"method": CNN, **_budget_fields(board, budgets), "seed": seed,
                           "gating": False, **row, "commit": at,
                           "run_seconds": round(say.elapsed(), 1)})


def floor_rows(data, boards, seed, s: SearchSettings, scale: str, say, at: str,
               finished_only: bool = False) -> list[dict]:
    """Logistic regression and the MLP, trained once per seed (they do not depend on the
    board) and reported at each board with whether they fit its budgets."""
    out = []
    for kind in floors.FLOORS:
        path = store(scale) / f"{kind}_seed{seed}.json"
        kept = _kept(path, s)
        if kept is None:
            if finished_only:
                continue
            clock = _Clock(WORK / scale / f"{kind}_seed{seed}.elapsed.json", say)
            train, val, teacher = _teacher(data, s, seed, clock)
            clock(f"{kind}: training up to {s.finetune_epochs} epochs")
            kept = _keep(path, s, {
                **floors.train_and_measure(kind, train, val, data.x_test, data.y_test,
                                           s.finetune_epochs, s.recipe, teacher, seed,
                                           str(WORK / scale / f"{kind}_seed{seed}"), clock),
                "commit": at, "run_seconds": round(clock.elapsed(), 1)})
        for b in boards:
            budgets = b.budgets()
            fits = kept["flash"] <= budgets.flash and kept["measured_arena"] <= budgets.sram
            out.append({"method": kind, **_budget_fields(b, budgets), "seed": seed,
                        "gating": False, "fits": fits, **kept})
    return out


def finished_cells(boards, seeds: int, s: SearchSettings, scale: str):
    """(rows, unfinished cells): the rows of every (board, seed) cell whose search and
    baselines are all kept at settings `s` (with the CNN when it finished, and the floors
    at the boards with a finished cell), and "board seed n" for the rest, with the
    methods kept so far. Nothing is run."""
    runs, unfinished = [], []
    for seed in range(seeds):
        at_seed = []
        for b in boards:
            rows = run_one(None, None, b, seed, s, scale, None, "", finished_only=True)
            if rows is None:
                cell = store(scale) / f"{b.name}_seed{seed}"
                done = [m for m in ("mcuformer", *METHODS) if _kept(cell / f"{m}.json", s)]
                unfinished.append(f"{b.name} seed {seed}"
                                  + (f" ({', '.join(done)} kept)" if done else ""))
                continue
            at_seed.append(b)
            runs += rows
            cnn = cnn_row(None, b, seed, s, scale, None, "", finished_only=True)
            runs += [cnn] if cnn else []
        runs += floor_rows(None, at_seed, seed, s, scale, None, "", finished_only=True)
    return runs, unfinished


def hours(runs: list[dict]) -> float:
    """The time of the whole benchmark: the wall time of every method at every (board,
    seed), as measured when it ran (a baseline that is an earlier one's run counts only
    the costing that found so), the floors once per seed, not per board."""
    fl = {(r["method"], r["seed"]): r.get("run_seconds", 0) for r in runs
          if r["method"] in floors.FLOORS}
    rest = sum(r.get("run_seconds", 0) for r in runs if r["method"] not in floors.FLOORS)
    return round((rest + sum(fl.values())) / 3600, 2)


def summary(runs: list[dict]) -> list[dict]:
    import numpy as np
    out = []
    for b in dict.fromkeys(r["board"] for r in runs):
        for m in ["mcuformer", *METHODS, *REPORTED]:
            rows = [r for r in runs if r["board"] == b and r["method"] == m]
            top = [r["top1"] for r in rows if r["top1"] is not None]
            if rows:  # a method with no model that fits at a board has no mean
                out.append({"board": b, "method": m, "seeds": len(top),
                            "infeasible_seeds": len(rows) - len(top),
                            "mean_top1": float(np.mean(top)) if top else None,
                            "std_top1": float(np.std(top)) if top else None,
                            "fits": all(r.get("fits", True) for r in rows)})
    return out


def problems(runs: list[dict], summ: list[dict]) -> list[str]:
    out = []
    for r in runs:
        if r["method"] in REPORTED or r["top1"] is None:
            continue
        what = f"{r['method']} seed {r['seed']} on {r['board']}"
        for fig, budget in (("arena_to_give", "sram_budget"), ("flash", "flash_budget"),
                            ("instructions", "latency_budget")):
            if r.get(fig) is not None and r.get(budget) and r[fig] > r[budget]:
                out.append(f"{what}: {fig} {r[fig]:,} is over its budget {r[budget]:,}")
    out += [f"the search found no model on {r['board']}, seed {r['seed']}"
            for r in runs if r["method"] == "mcuformer" and r["top1"] is None]
    for b in dict.fromkeys(s["board"] for s in summ):
        ours = next(s for s in summ if s["board"] == b and s["method"] == "mcuformer")
        if ours["mean_top1"] is None:
            continue
        for s in summ:
            if (s["board"] == b and s["mean_top1"] is not None and s["method"] in METHODS
                    and s["mean_top1"] > ours["mean_top1"]):
                out.append(f"on {b} the search's mean test top-1 {ours['mean_top1']:.4f} "
                           f"is below {s['method']}'s {s['mean_top1']:.4f}")
        if b in TARGET_TOP1 and ours["mean_top1"] < TARGET_TOP1[b]:
            out.append(f"on {b} the search's mean test top-1 {ours['mean_top1']:.4f} is "
                       f"below its target {TARGET_TOP1[b]:.2f}")
    return out


def write_table(doc: dict, path: pathlib.Path) -> None:
    from tflm_vit.config import SubnetConfig
    lines = [f"# Search vs baselines on Fashion-MNIST at three boards (commit {doc['commit']})",
             "", f"`{doc['command']}`; scale `{doc['scale']}`, seeds {doc['seeds']}; "
             f"{doc['hours_in_all']} h of runs in all on this machine (2 CPU cores; runs "
             f"computed at commits {', '.join(sorted({r['commit'] for r in doc['runs']}))}). "
             "Every top-1 is the int8 model in TFLM on the full test set (10,000 images).", "",
             *([f"**Partial** (`--finished`): the (board, seed) cells finished so far; "
                f"not yet finished: {', '.join(doc['unfinished'])}.", ""]
               if doc.get("unfinished") else []),
             "| board | budgets (arena / flash / instructions) |", "|---|---|"]
    for b in doc["boards"]:
        lines.append(f"| {b['part']} ({b['cpu']}, {b['clock_mhz']} MHz) | "
                     f"{b['arena_budget']:,} B / {b['flash_budget']:,} B / "
                     f"{b['instruction_budget']:,} ({b['latency_ms']:g} ms) |")
    lines += ["", "| board | method | seeds | mean test top-1 | std |", "|---|---|---|---|---|"]
    for s in doc["summary"]:
        name = s["method"] + (" (reported)" if s["method"] in REPORTED else "")
        if s["method"] in floors.FLOORS and not s["fits"]:
            name += ", does not fit"
        if s["mean_top1"] is None:
            lines.append(f"| {s['board']} | {name} | 0 | no model fits | |")
            continue
        lines.append(f"| {s['board']} | {name} | {s['seeds']} | {s['mean_top1']:.4f} | "
                     f"{s['std_top1']:.4f} |")
    lines += ["", "Per run: arena to give TFLM on the board's build (Cortex-M, CMSIS-NN), "
              "its arena measured there (QEMU, the model run in exactly that arena), "
              "instructions counted there (ours) or predicted (the rest), flash, the final "
              "training's epochs and seconds.", "",
              "| board | seed | method | top-1 | float | arena | on target | instructions "
              "| flash | epochs | train s | model |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["runs"]:
        if r["top1"] is None:
            lines.append(f"| {r['board']} | {r['seed']} | {r['method']} | – | – | – | – | – "
                         f"| – | – | – | {r['infeasible']} |")
            continue
        if r["method"] == CNN:
            short = cnn_baseline.CnnConfig(**r["config"]).short()
        elif r["method"] in floors.FLOORS:
            short = r["method"]
        else:
            short = SubnetConfig.from_dict(r["config"]).short()
            if r.get("same_run_as"):  # one run for two baselines (search/baselines.py)
                short += f" ({r['same_run_as']}'s run)"
        arena = r.get("arena_to_give") or r.get("measured_arena")
        target = f"{r['arena_on_target']:,}" if r.get("arena_on_target") else "–"
        ins = r.get("instructions") or r.get("predicted_instructions")
        lines.append(f"| {r['board']} | {r['seed']} | {r['method']} | {r['top1']:.4f} | "
                     f"{r.get('float_top1') or 0:.4f} | {arena:,} | {target} | "
                     f"{f'{ins:,}' if ins else '–'} | {r['flash']:,} | {r.get('epochs', '–')} "
                     f"| {r.get('train_seconds') or 0:.0f} | {short} |")
    lines += ["", "Claims checked (the script exits non-zero otherwise): every chosen ViT "
              "within its board's budgets and running on the board's emulated CPU in exactly "
              "its arena with the wheel's output; the search's mean top-1 at least each "
              "baseline's and its target (0.88 on the small board, 0.90 on the others). The "
              "CNN and the floors are reported, not gated.",
              *[f"- FAIL {p}" for p in doc["problems"]], ""]
    path.write_text("\n".join(lines))


def plot(doc: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    boards = list(dict.fromkeys(s["board"] for s in doc["summary"]))
    methods = ["mcuformer", *METHODS, *REPORTED]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        rows = [next((s for s in doc["summary"] if s["board"] == b and s["method"] == m
                      and s["mean_top1"] is not None), None) for b in boards]
        xs = [j + i * width for j, r in enumerate(rows) if r]
        ax.bar(xs, [r["mean_top1"] for r in rows if r], width,
               yerr=[r["std_top1"] for r in rows if r], label=m)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(boards))], boards)
    lo = min(s["mean_top1"] for s in doc["summary"] if s["mean_top1"] is not None)
    ax.set_ylim(max(0.0, lo - 0.03), 1.0)
    ax.set_ylabel("test top-1, int8 in TFLM")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def on_target(runs: list[dict], say, count: bool = True) -> list[str]:
    """Every chosen ViT on its board's emulated CPU: TFLM with CMSIS-NN and our ops (the
    firmware's model runner under QEMU, tflm_vit/firmware/on_target.py), in an arena of
    exactly its arena to give (its SRAM budget for rows that predate it). The model is
    rebuilt from the row's config on shape-only weights, as the cost model builds it: an
    arena and an instruction count do not depend on the weights' values. Sets each row's
    arena_on_target and (count: ours, counted with tflm_vit/firmware/instructions.py)
    instructions; returns a line for each model that does not run there, or whose output
    differs from the wheel's on the same seeded input."""
    import numpy as np

    from tflm_vit.config import SubnetConfig
    from tflm_vit.firmware.on_target import run_in_arena
    from tflm_vit.search.costs import shape_net, shape_only_model
    measured, out = {}, []
    for r in runs:
        if r["method"] in REPORTED or r["config"] is None:
            continue
        config = SubnetConfig.from_dict(r["config"])
        cpu, target = r.get("cpu", "cortex-m7"), r.get("target", "wheel")
        arena = r.get("arena_to_give") if "board" in r else r["sram_budget"]
        key = (config.to_json(), cpu, target, arena)
        if key not in measured:
            say(f"on the emulated {cpu}: {config.short()} in {arena:,} B")
            net = shape_net(fashion_space() if "board" in r else _old_space())
            model = bytes(shape_only_model(net, config, target).model)
            image = np.random.default_rng(0).integers(
                -128, 128, (config.resolution, config.resolution, net.space.in_channels),
                dtype=np.int8)
            run = run_in_arena(model, image, cpu, arena,
                               count=count and r["method"] == "mcuformer")
            measured[key] = (run.arena_used, run.matches_wheel, run.instructions)
        used, same, n = measured[key]
        r["arena_on_target"] = used
        if n is not None:
            r["instructions"] = n
        what = f"{r['method']} seed {r['seed']} on {r.get('board', r['sram_budget'])} " \
               f"({config.short()})"
        if used is None:
            out.append(f"{what} does not run on the emulated {cpu} in {arena:,} B")
        elif not same:
            out.append(f"{what}: its output on the emulated {cpu} differs from the wheel's")
    return out


def _old_space() -> SearchSpace:
    """The space of results that predate the boards (the built-in small space, 1 channel)."""
    from tflm_vit.space import DEFAULT_SPACE
    return SearchSpace.from_dict({**DEFAULT_SPACE.to_dict(), "in_channels": 1,
                                  "num_classes": 10})


def recost(seeds: tuple[int, ...] = (0,)) -> dict:
    """The committed table's chosen models of `seeds`, re-costed from their configs alone
    (the cost model: export -> convert -> plan on shape-only weights): the arena to give
    and the flash must be the committed (trained, deployed) models' own (for rows deployed
    before convert dropped the quantization only our ops' constants carried, the model
    keeping it; for rows deployed with version-1 options, their flash plus what the
    FlexBuffers options add, to within 4 bytes an op), and the arena on the emulated target the committed one; the CNN
    members, re-measured in TFLM, their arena."""
    from tflm_vit.config import SubnetConfig
    from tflm_vit.search.costs import CostModel, shape_net, shape_only_model
    committed = json.loads((RESULTS / "search.json").read_text())
    chosen = [r for r in committed["runs"] if r["seed"] in seeds and r["top1"] is not None
              and r["method"] not in floors.FLOORS]
    again = [{**r, "arena_on_target": None} for r in chosen]
    out = on_target(again, lambda text: None, count=False)
    rows = []
    for r, t in zip(chosen, again):
        if r["method"] == CNN:
            m = cnn_baseline.measure_member(cnn_baseline.CnnConfig(**r["config"]), 1, 10)
            # the arena only: the member was chosen by it, and the trained CNN's flash
            # differs from the shape-only member's (808 of 26,472 bytes on one)
            got = {"measured_arena": m["arena"]}
        else:
            space = fashion_space() if "board" in r else _old_space()
            target = r.get("target", "wheel")
            costs = CostModel(space, target=target, cpu=r.get("cpu", "cortex-m7"))
            config = SubnetConfig.from_dict(r["config"])
            c = costs.cost(config)
            old = r.get("arena_on_target", r.get("arena_cortex_m7"))
            got = {"arena_to_give": c.sram, "flash": c.flash, "arena_on_target": (
                t["arena_on_target"], old)}
            kept = r.get("constant_quantization", True)
            if kept:  # deployed before convert dropped what only our ops' constants carry
                planned = shape_only_model(shape_net(space), config, target,
                                           keep_constant_quantization=True)
                got["flash"] = (len(planned.model), r["flash"])
            if r.get("options_version", 1) != options.VERSION:
                # Deployed with our ops' older options: the same model but for each op's
                # options' size (flatbuffers padding: under 4 bytes an op either way).
                planned = shape_only_model(shape_net(space), config, target,
                                           keep_constant_quantization=kept)
                growth, n = options_growth(planned)
                now, then = len(planned.model), r["flash"] + growth
                got["flash"] = (now, now if abs(now - then) < 4 * n else then)
        row = {"method": r["method"], "sram_budget": r["sram_budget"], "seed": r["seed"],
               **{k: (v[0] if isinstance(v, tuple) else v) for k, v in got.items()}}
        rows.append(row)
        for k, v in got.items():
            now, then = v if isinstance(v, tuple) else (v, r.get(k))
            if now != then:
                out.append(f"{r['method']} seed {r['seed']} at {r['sram_budget']:,} B: {k} "
                           f"{now} re-costed, {then} committed")
    return {"rows": rows, "problems": out}


def options_growth(planned) -> tuple[int, int]:
    """(bytes, ops): how much more our ops' options in `planned` take as FlexBuffers maps
    (options.VERSION) than as version 1's fixed layout (a 12-byte header and 4 bytes a
    field), and over how many ops."""
    from tflm_vit.memory.scratch import custom_options, our_options
    from tflm_vit.tflite_model import parse_model
    info = parse_model(bytes(planned.model))
    ours = [op for op in info.ops if op.name in options.OPS]
    grown = sum(len(custom_options(info, op)) - (12 + 4 * len(our_options(info, op)))
                for op in ours)
    return grown, len(ours)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--boards", default=",".join(BOARDS),
                   help=f"comma-separated boards (default {','.join(BOARDS)})")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--full", action="store_true", help="MCUFormer's scale (days)")
    scale.add_argument("--smoke", action="store_true",
                       help="tiny settings, printed only: checks the script runs")
    p.add_argument("--ray-address", help="run the jobs on this Ray cluster")
    p.add_argument("--no-ray", action="store_true", help="run every job in this process")
    p.add_argument("--finished", action="store_true",
                   help="publish the (board, seed) cells the work folders hold finished, "
                        "running nothing: a partial table, its claims checked on those cells, "
                        "the cells not yet run listed")
    p.add_argument("--recost", action="store_true",
                   help="re-cost the committed table's seed-0 models from their configs "
                        "and print (a cheap check that the code still gives its figures)")
    a = p.parse_args(argv)
    origin = stamp("search.py", argv)
    if a.recost:
        return publish({**origin, **recost()}, "search", True, None)
    boards = [find_board(b) for b in a.boards.split(",")]
    name = "full" if a.full else "smoke" if a.smoke else "committed"
    s = settings(name)
    from tflm_vit.data import load_fashion_mnist
    data = load_fashion_mnist()
    if a.smoke:  # a slice, so the smoke run takes minutes
        data = dataclasses.replace(data, x_train=data.x_train[:3000],
                                   y_train=data.y_train[:3000], x_test=data.x_test[:300],
                                   y_test=data.y_test[:300])
    base = fashion_space(data)

    def say(text):
        print(text, file=sys.stderr, flush=True)

    from tflm_vit.search.parallel import executor
    runs, unfinished = [], []
    if a.finished:  # what the work folders hold, nothing run
        runs, unfinished = finished_cells(boards, a.seeds, s, name)
        if not runs:
            say(f"no (board, seed) cell finished yet in {store(name)}: run without --finished")
            return 2
    else:
        with executor(a.ray_address, use_ray=not a.no_ray) as jobs:
            for seed in range(a.seeds):
                for b in boards:
                    say(f"== {b.name}, seed {seed}")
                    runs += run_one(base, data, b, seed, s, name, say, origin["commit"], jobs)
                    runs.append(cnn_row(data, b, seed, s, name, say, origin["commit"]))
                runs += floor_rows(data, boards, seed, s, name, say, origin["commit"])
    checks = on_target(runs, say)
    summ = summary(runs)
    doc = {**origin, "scale": name, "seeds": a.seeds, "settings": s.to_dict(),
           "boards": [b.to_dict() for b in boards], "hours_in_all": hours(runs),
           "runs": runs, "summary": summ, "unfinished": unfinished,
           "problems": problems(runs, summ) + checks}
    return publish(doc, "search", a.smoke, lambda: (write_table(doc, RESULTS / "search.md"),
                                                    plot(doc, RESULTS / "search.png")))


if __name__ == "__main__":
    sys.exit(main())
