"""What a search leaves behind: the deployed model, report.json and report.md (config,
float and int8-in-TFLM accuracy, memory per op, flash), and two plots (the space
evolution's path; accuracy against SRAM with the Pareto front and the budget line)."""

from __future__ import annotations

import json
import os

from tflm_vit.search.run import SearchResult


def write(result: SearchResult, out_dir: str, spaces_log: dict, board=None,
          seconds: float | None = None) -> dict:
    from tflm_vit import report
    paths = {k: os.path.join(out_dir, v) for k, v in {
        "model": "model_tflm_vit.tflite", "stock": "model_int8.tflite",
        "json": "report.json", "markdown": "report.md", "spaces": "space_evolution.png",
        "pareto": "pareto.png"}.items()}
    with open(paths["model"], "wb") as f:
        f.write(result.deployment.model)
    with open(paths["stock"], "wb") as f:
        f.write(result.deployment.stock)
    doc = result.to_dict()
    doc["space_evolution"] = spaces_log["rounds"]
    doc["board"] = None if board is None else board.to_dict()
    doc["usage"] = usage(result, board)
    doc["seconds"] = None if seconds is None else round(seconds, 1)
    with open(paths["json"], "w") as f:
        json.dump(doc, f, indent=1)
    r = report.analyze(result.deployment.model, name=f"searched {result.config.short()}")
    with open(paths["markdown"], "w") as f:
        f.write(markdown(result, report.format_report(r, with_ops=True), board, seconds))
    plot_spaces(spaces_log, paths["spaces"])
    plot_pareto(result, paths["pareto"])
    return paths


def usage(result: SearchResult, board=None) -> dict:
    """Each budget, what the shipped model uses of it, and (with a board) the latency in
    milliseconds at its clock."""
    c = result.evolution.best.cost
    used = {"sram": result.deployment.arena_size, "flash": result.deployment.flash,
            "latency": c.latency}
    out = {name: {"budget": budget, "used": used[name], "fraction": used[name] / budget}
           for name, budget in result.budgets.given.items()}
    if board is not None:
        out["latency_ms"] = c.latency / (board.clock_mhz * 1000)
    return out


def usage_lines(result: SearchResult, board=None) -> list[str]:
    from tflm_vit.search.budgets import UNITS
    u = usage(result, board)
    lines = [f"{name}: {v['used']:,} of {v['budget']:,} {UNITS[name]} ({v['fraction']:.0%})"
             for name, v in u.items() if name != "latency_ms"]
    if board is not None:
        lines.append(f"on {board.describe()}: about {u['latency_ms']:.0f} ms per inference "
                     "(predicted instructions at one per cycle)")
    return lines


def markdown(result: SearchResult, memory_report: str, board=None,
             seconds: float | None = None) -> str:
    a, c = result.accuracy, result.evolution.best.cost
    stock = "n/a" if a.stock_top1 is None else f"{a.stock_top1:.4f}"
    t = result.training
    q = result.quantisation or {}
    lines = [
        f"# Searched subnet: {result.config.short()}", "",
        (f"Board: {board.describe()}. " if board is not None else "")
        + f"Budgets: {result.budgets.describe()} (SRAM on TFLM target {result.budgets.target}, "
        f"latency on {result.budgets.cpu})"
        + (f"; the search took {seconds / 60:.0f} min." if seconds else "."), "",
        *[f"- {line}" for line in usage_lines(result, board)], "",
        f"Space: {result.space_point['description']}", "",
        "| figure | value |", "|---|---|",
        f"| validation top-1 (shared weights) | {result.val_accuracy:.4f} |",
        *([f"| final training | {t.epochs} epochs (best {t.best_epoch}), "
           f"{t.seconds / 60:.1f} min, validation top-1 {t.best_val_top1:.4f} |"]
          if t is not None else []),
        *([f"| validation top-1, float / int8 in TFLM | {q['float_top1']:.4f} / "
           f"{q['int8_top1']:.4f} |"] if q else []),
        *([f"| teacher | {result.teacher.describe()} |"] if result.teacher is not None
          else []),
        f"| test top-1, float | {a.float_top1:.4f} |",
        f"| test top-1, stock int8 in TFLM | {stock} |",
        f"| test top-1, converted + planned int8 in TFLM | {a.top1:.4f} |",
        f"| arena to give TFLM ({result.budgets.target}) | {result.deployment.arena_size:,} |",
        f"| arena measured in TFLM (x86-64 wheel) | {a.arena_measured:,} |",
        f"| flash (model bytes) | {result.deployment.flash:,} |",
        f"| predicted instructions ({result.budgets.cpu}) | {c.latency:,} |",
        f"| MACs | {c.macs:,} |",
        f"| subnets evaluated on data | {result.evolution.evaluations} |", "",
        "## Memory per op", "", "```", memory_report, "```", ""]
    return "\n".join(lines)


def plot_spaces(log: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for rnd in log["rounds"]:
        xs = [sc["point"]["tokens"] for sc in rnd["scores"]]
        ys = [sc["point"]["rank"] for sc in rnd["scores"]]
        ax.scatter(xs, ys, s=40, label=f"round {rnd['round']}", alpha=0.7)
        for sc in rnd["scores"]:
            ax.annotate(f"{sc['score']:.2f}", (sc["point"]["tokens"], sc["point"]["rank"]),
                        fontsize=7, xytext=(4, 4), textcoords="offset points")
        for m in rnd["moves"]:
            if m["from"] != m["to"]:
                ax.annotate("", (m["to"]["tokens"], m["to"]["rank"]),
                            (m["from"]["tokens"], m["from"]["rank"]),
                            arrowprops={"arrowstyle": "->", "alpha": 0.6})
    from tflm_vit.search.space_evolution import token_grid
    from tflm_vit.space import SearchSpace
    base = SearchSpace.from_dict(log["base"])
    ranks, grid = base.rank_ratio, token_grid(base)
    ax.set_yticks(range(len(ranks)), [f"{r:g}" for r in ranks])
    ax.set_xticks(range(len(grid)), [f"{(r // p) ** 2}\n{r}/{p}" for r, p in grid])
    ax.set_xlabel("tokens (resolution / patch)")
    ax.set_ylabel("low-rank ratio")
    ax.set_title("search-space evolution (label: score)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_pareto(result: SearchResult, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ev = [c for c in result.evolution.evaluated if c.feasible]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([c.cost.sram for c in ev], [c.accuracy for c in ev], s=12, alpha=0.5,
               label="evaluated (fit the budgets)")
    front = result.evolution.pareto
    ax.step([c.cost.sram for c in front], [c.accuracy for c in front], where="post",
            color="C1", label="Pareto front")
    b = result.evolution.best
    ax.scatter([b.cost.sram], [b.accuracy], marker="*", s=200, color="C3", label="chosen")
    if result.budgets.sram:
        ax.axvline(result.budgets.sram, color="k", linestyle="--",
                   label=f"SRAM budget {result.budgets.sram:,}")
    ax.set_xlabel(f"arena bytes ({result.budgets.target})")
    ax.set_ylabel("validation top-1 (shared weights)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
