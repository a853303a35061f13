"""What each piece of the training recipe adds on Fashion-MNIST (tflm_vit/recipe.py).

One fixed ViT (by default 28/7, d64, depth 4, 2 heads, MLP ratio 2: 16 tokens, cheap
enough to train many times on 2 CPU cores) trains from the same initial weights once per
row, each row adding one piece to the row before: XLA-compiled steps, data augmentation
(random translation by 2 px, horizontal flips), label smoothing 0.1, linear warm-up into
the cosine decay, distillation from the cached CNN teacher, then the convolutional stem
(16 channels: an architecture change, the search's `stem` knob); then the baseline
recipe and the whole recipe with the stem again at twice the epochs, so that each claim
compares equal epochs. Every row is trained on the training split less a 10 %
validation split (its best validation epoch kept, as a search's final training does),
exported int8, converted and planned, and measured in TFLM on the full test set.

Writes bench/results/recipe.{json,md,png} (per row: float and int8-in-TFLM test top-1,
training seconds, the row it is measured against, and the teacher's own one-off
seconds) and exits non-zero when, at either length, the whole recipe with the stem is
not above the baseline recipe in TFLM, or a row's int8 model loses more than 0.5 pt
against its float model. Rows are kept in build/bench_recipe/ (a rerun skips
finished rows; a row interrupted resumes at its last epoch).

Run: .venv/bin/python bench/recipe.py [--epochs 15] [--smoke]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
WORK = REPO / "build" / "bench_recipe"
from provenance import publish, stamp  # noqa: E402  (bench/provenance.py)

from tflm_vit.config import SubnetConfig  # noqa: E402
from tflm_vit.recipe import BASELINE_RECIPE, Recipe  # noqa: E402

ARCH = SubnetConfig(28, 7, 64, 4, 2, 2.0)
FULL = Recipe()
# (row name, what it adds, recipe, teacher, stem channels, epochs multiplier, the row it
# is measured against). The first rows add one piece each to the row above; the last two
# are the baseline and the whole recipe again at twice the epochs, so that every claim
# compares equal epochs (a recipe measured against a baseline that trained half as long
# says nothing).
ROWS = (
    ("baseline", "AdamW + cosine, nothing else", dataclasses.replace(BASELINE_RECIPE,
                                                                     jit_compile=False),
     False, 0, 1, None),
    ("xla", "+ XLA-compiled steps", BASELINE_RECIPE, False, 0, 1, "baseline"),
    ("augmentation", "+ translation and flips", dataclasses.replace(BASELINE_RECIPE,
                                                                    augment=True),
     False, 0, 1, "xla"),
    ("label_smoothing", "+ label smoothing 0.1", dataclasses.replace(
        BASELINE_RECIPE, augment=True, label_smoothing=FULL.label_smoothing), False, 0, 1,
     "augmentation"),
    ("warmup", "+ warm-up", dataclasses.replace(FULL, distillation=0.0), False, 0, 1,
     "label_smoothing"),
    ("teacher", "+ distillation from the CNN teacher", FULL, True, 0, 1, "warmup"),
    ("stem", "+ convolutional stem (16 channels)", FULL, True, 16, 1, "teacher"),
    ("baseline_longer", "the baseline recipe (XLA), twice the epochs", BASELINE_RECIPE, False,
     0, 2, "xla"),
    ("longer", "the whole recipe and stem, twice the epochs", FULL, True, 16, 2,
     "baseline_longer"),
)
# The claims: at each length, the whole recipe with the stem above the baseline recipe.
CLAIMS = (("stem", "xla"), ("longer", "baseline_longer"))
MAX_INT8_LOSS = 0.005


def arguments(doc: str, default_epochs: int, argv) -> argparse.Namespace:
    """The training benchmarks' command line: --epochs, --smoke."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=default_epochs)
    p.add_argument("--smoke", action="store_true", help="a slice of the data and 1 epoch, "
                   "printed only: checks the script runs")
    return p.parse_args(argv)


@dataclasses.dataclass
class Setup:
    """What every training benchmark starts from: Fashion-MNIST (a slice when smoking),
    a search's split at seed 0 (10 % held out for validation), the cached CNN teacher of
    that split (one epoch when smoking), the epochs and the work folder."""
    data: object
    train: object
    val: object
    teacher: object
    epochs: int
    work: pathlib.Path
    say: object


def setup(args: argparse.Namespace, work: pathlib.Path) -> Setup:
    from tflm_vit.data import load_fashion_mnist, validation_split
    from tflm_vit.teacher import TeacherSpec, teacher_for
    data, epochs = load_fashion_mnist(), args.epochs
    if args.smoke:
        work = work / "smoke"
        data = dataclasses.replace(data, x_train=data.x_train[:2000], y_train=data.y_train[:2000],
                                   x_test=data.x_test[:200], y_test=data.y_test[:200])
        epochs = 1
    train, val = validation_split(data, 0.1, 0)  # a search's split at seed 0: its teacher

    def say(text):
        print(text, file=sys.stderr, flush=True)
    teacher = teacher_for(train, val.x_test, val.y_test,
                          TeacherSpec(epochs=1) if args.smoke else TeacherSpec(), say=say)
    return Setup(data, train, val, teacher, epochs, work, say)


def train_and_measure(name, config, space, recipe, teacher, epochs, data, train, val, work,
                      say) -> dict:
    """One row of a training benchmark: `config` trained from the seeded supernet of
    `space` (every row from the same initial weights), its best validation epoch exported
    int8, converted and planned, and measured in TFLM on data's full test set (and its
    instructions on the Cortex-M7 predicted by the latency model). Kept in
    work/<name>.json (a rerun with the same identity skips it; an interrupted row resumes
    at its last epoch from work/<name>/)."""
    from tflm_vit import pipeline
    from tflm_vit.latency import predict_latency
    from tflm_vit.subnet_training import train_subnet
    from tflm_vit.supernet.model import seeded_supernet
    path = work / f"{name}.json"
    identity = {"config": json.loads(config.to_json()), "recipe": recipe.to_dict(),
                "epochs": epochs, "teacher": teacher is not None}
    if path.exists():
        kept = json.loads(path.read_text())
        if kept["identity"] == identity:
            return kept
    net = seeded_supernet(space, 0)
    start = time.monotonic()
    trained, fit = train_subnet(net, config, train, val, epochs, recipe, teacher,
                                patience=None, checkpoint_dir=str(work / name), seed=0, say=say)
    d = pipeline.deploy(trained, config, train.x_train[:pipeline.CALIBRATION_IMAGES],
                        verify_images=val.x_test, target="wheel")
    acc = pipeline.measure(d, trained, data.x_test, data.y_test, run_stock=False)
    row = {"name": name, "identity": identity, "top1": acc.top1, "float_top1": acc.float_top1,
           "images": acc.images, "epochs": fit.epochs, "best_epoch": fit.best_epoch,
           "train_seconds": fit.seconds, "seconds_here": round(time.monotonic() - start, 1),
           "val_top1": fit.best_val_top1, "arena": d.arena_size, "flash": d.flash,
           "instructions": predict_latency(d.model, "cortex-m7").instructions}
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1))
    return row


def run_row(name, recipe, use_teacher, stem, epochs, data, train, val, teacher, work,
            say) -> dict:
    from tflm_vit.space import SearchSpace
    space = SearchSpace([28], [ARCH.patch_size], [ARCH.embed_dim], [ARCH.depth], [2],
                        [2.0], stem=[0, 16], in_channels=1, num_classes=10)
    return train_and_measure(name, dataclasses.replace(ARCH, stem=stem), space, recipe,
                             teacher if use_teacher else None, epochs, data, train, val,
                             work, say)


def write_table(doc: dict, path: pathlib.Path) -> None:
    t = doc["teacher"]
    lines = [f"# What each recipe piece adds (commit {doc['commit']})", "",
             f"`{doc['command']}`: {doc['architecture']} on Fashion-MNIST, {doc['epochs']} "
             "epochs per row (the last two rows twice that), each of the first rows adding "
             "one piece to the row above, the last two the baseline and the whole recipe "
             "again at twice the epochs; every row measured against the row named, at equal "
             "epochs. Top-1 on the full test set (10,000 images), the int8 model in TFLM "
             "(converted to our ops and planned). Training seconds on this machine (2 CPU "
             "cores).", "",
             "| row | adds | epochs | test top-1, int8 in TFLM | float | against | gain "
             "| training s |", "|---|---|---|---|---|---|---|---|"]
    top1 = {r["name"]: r["top1"] for r in doc["rows"]}
    for r in doc["rows"]:
        against = r.get("against")
        gain = "" if against is None else f"{(r['top1'] - top1[against]) * 100:+.2f} pt"
        lines.append(f"| {r['name']} | {r['adds']} | {r['identity']['epochs']} "
                     f"| {r['top1']:.4f} | {r['float_top1']:.4f} | {against or ''} | {gain} "
                     f"| {r['train_seconds']:.0f} |")
    lines += ["", f"The teacher (a CNN trained once per training set and cached, "
              f"tflm_vit/teacher.py): {t['held_out_top1']:.4f} validation top-1, trained in "
              f"{t['seconds']:.0f} s, once.", "",
              "Claims checked (the script exits non-zero otherwise): at each length the "
              "whole recipe with the stem is above the baseline recipe in TFLM (" +
              "; ".join(f"{a} > {b}" for a, b in CLAIMS) + "); no row's int8 model loses "
              "more than 0.5 pt against its float model.",
              *[f"- FAIL {p}" for p in doc["problems"]], ""]
    path.write_text("\n".join(lines))


def plot(doc: dict, path: pathlib.Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = doc["rows"]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(range(len(rows)), [r["top1"] for r in rows], color="C0", label="int8 in TFLM")
    ax.plot(range(len(rows)), [r["float_top1"] for r in rows], "o", color="C1", label="float")
    ax.set_xticks(range(len(rows)), [r["name"] for r in rows], rotation=20, fontsize=8)
    lo = min(r["top1"] for r in rows)
    ax.set_ylim(max(0.0, lo - 0.03), min(1.0, max(r["float_top1"] for r in rows) + 0.02))
    ax.set_ylabel("test top-1 (Fashion-MNIST)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def claims_broken(rows: list) -> list[str]:
    """The claims the table makes that its rows break."""
    top1 = {r["name"]: r["top1"] for r in rows}
    problems = [f"{full} ({top1[full]:.4f}) is not above {base} ({top1[base]:.4f}) at equal "
                f"epochs" for full, base in CLAIMS if not top1[full] > top1[base]]
    return problems + [f"{r['name']}: int8 in TFLM {r['top1']:.4f} loses more than 0.5 pt "
                       f"against float {r['float_top1']:.4f}" for r in rows
                       if r["float_top1"] - r["top1"] > MAX_INT8_LOSS]


def main(argv=None) -> int:
    a = arguments(__doc__, 15, argv)
    origin = stamp("recipe.py", argv)
    run = setup(a, WORK)
    data, train, val, teacher, epochs, say = (run.data, run.train, run.val, run.teacher,
                                              run.epochs, run.say)
    rows = []
    for name, adds, recipe, use_teacher, stem, mult, against in ROWS:
        say(f"== {name}: {adds}")
        row = run_row(name, recipe, use_teacher, stem, epochs * mult, data, train, val,
                      teacher, run.work, say)
        rows.append({**row, "adds": adds, "against": against})
    problems = claims_broken(rows)
    doc = {**origin, "architecture": ARCH.short(), "epochs": epochs, "rows": rows,
           "teacher": {"held_out_top1": teacher.held_out_top1, "seconds": teacher.seconds},
           "problems": problems}
    return publish(doc, "recipe", a.smoke, lambda: (write_table(doc, RESULTS / "recipe.md"),
                                                    plot(doc, RESULTS / "recipe.png")))


if __name__ == "__main__":
    sys.exit(main())
