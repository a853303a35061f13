"""At the same token count, the image's own resolution or a downscaled one?

A token count can be reached at several input resolutions (Fashion-MNIST's 28 px: 28/4,
21/3 and 14/2 all give 7 x 7 = 49 tokens). The transformer then costs the same; only the
convolutional stem and the patch embedding, a few percent of the instructions, grow with
the resolution. This trains one body (by default the F746 search's winner: width 64,
depth 4, heads [4, 4, 4, 1], MLP ratios [3, 3, 1, 3], dense, stem of 8 channels) at
each resolution from the same initial weights, with the full recipe and the cached CNN
teacher, for the same epochs, and measures each as the int8 model in TFLM on the full
test set, beside its arena, flash and predicted instructions on the Cortex-M7 (CMSIS-NN).

It is the evidence behind the default space keeping each token count at the largest
resolution that reaches it (tflm_vit.space.space_for_data). Writes
bench/results/token_resolution.{json,md,png} and exits non-zero when the image's own
resolution is not the most accurate. Rows are kept in build/bench_token_resolution/.

Run: .venv/bin/python bench/token_resolution.py [--epochs 10] [--smoke]
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
WORK = REPO / "build" / "bench_token_resolution"
from provenance import publish, stamp  # noqa: E402  (bench/provenance.py)
from recipe import arguments, plot, setup, train_and_measure  # noqa: E402  (bench/recipe.py)

from tflm_vit.config import SubnetConfig  # noqa: E402
from tflm_vit.recipe import Recipe  # noqa: E402

BODY = SubnetConfig(28, 4, 64, 4, [4, 4, 4, 1], [3.0, 3.0, 1.0, 3.0], 1.0, 8)
INPUTS = ((28, 4), (14, 2))  # (resolution, patch): 49 tokens each


def write_table(doc: dict, path: pathlib.Path) -> None:
    lines = [f"# The same tokens at the image's own resolution or downscaled (commit "
             f"{doc['commit']})", "",
             f"`{doc['command']}`: the body `{doc['body']}` on Fashion-MNIST at each input, "
             f"{doc['epochs']} epochs from the same initial weights, full recipe with the "
             "CNN teacher; top-1 on the full test set (10,000 images), the int8 model in "
             "TFLM (converted to our ops and planned); instructions predicted by the "
             "latency model for the Cortex-M7. Training seconds on this "
             "machine (2 CPU cores).", "",
             "| input | tokens | test top-1, int8 in TFLM | float | instructions | arena | "
             "flash | training s |", "|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        lines.append(f"| {r['name']} | {r['tokens']} | {r['top1']:.4f} | "
                     f"{r['float_top1']:.4f} | {r['instructions']:,} | {r['arena']:,} | "
                     f"{r['flash']:,} | {r['train_seconds']:.0f} |")
    lines += ["", "Claim checked (the script exits non-zero otherwise): the image's own "
              "resolution is the most accurate in TFLM.",
              *[f"- FAIL {p}" for p in doc["problems"]], ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    a = arguments(__doc__, 10, argv)
    origin = stamp("token_resolution.py", argv)
    from tflm_vit.space import SearchSpace
    run = setup(a, WORK)
    data, train, val, teacher, epochs, say = (run.data, run.train, run.val, run.teacher,
                                              run.epochs, run.say)
    space = SearchSpace([r for r, _ in INPUTS], [q for _, q in INPUTS], [BODY.embed_dim],
                        [BODY.depth], [1, 4], [1.0, 3.0], stem=[BODY.stem], in_channels=1,
                        num_classes=10)
    rows = []
    for r, q in INPUTS:
        config = dataclasses.replace(BODY, resolution=r, patch_size=q)
        say(f"== {config.short()}")
        row = train_and_measure(f"{r}/{q}", config, space, Recipe(), teacher, epochs, data,
                                train, val, run.work, say)
        rows.append({**row, "tokens": config.num_tokens})
    own = rows[0]
    problems = [f"{r['name']} ({r['top1']:.4f}) is more accurate than the image's own "
                f"resolution {own['name']} ({own['top1']:.4f})" for r in rows[1:]
                if r["top1"] > own["top1"]]
    doc = {**origin, "body": BODY.short(), "epochs": epochs, "rows": rows,
           "teacher": {"held_out_top1": teacher.held_out_top1, "seconds": teacher.seconds},
           "problems": problems}
    return publish(doc, "token_resolution", a.smoke,
                   lambda: (write_table(doc, RESULTS / "token_resolution.md"),
                            plot(doc, RESULTS / "token_resolution.png")))


if __name__ == "__main__":
    sys.exit(main())
