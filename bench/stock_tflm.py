"""Stock TFLM memory of the reference ViTs R0, R1, R2 exported from the supernet code.

Writes bench/results/stock_tflm.json ({"commit", "command", "models": [{"name",
"arena_total", "arena_head", "arena_tail", "flash"}, ...]}), stock_tflm.md (table) and
stock_tflm.png (live bytes per op) beside it. Arena figures are what the wheel's
recording allocator prints; each is confirmed by a binary search for the smallest arena
the interpreter accepts (within 16 bytes below: TFLM aligns the tail inside the arena)
and by the memory model; the script exits non-zero when either disagrees. Weights are
the untrained supernet's with non-zero LayerNorm betas (trained-shaped: a zero beta's
ADD is dropped by the export; other values do not change memory).

Run: .venv/bin/python bench/stock_tflm.py [--only R0]   (or: make bench)
"""

import argparse
import os
import sys

import numpy as np

from provenance import publish, stamp  # bench/provenance.py, beside this script

from tflm_vit import report, runtime  # noqa: E402
from tflm_vit.export import export_tflite  # noqa: E402
from tflm_vit.memory import predict  # noqa: E402
from tflm_vit.space import REFERENCE_CONFIGS, REFERENCE_SPACE  # noqa: E402
from tflm_vit.supernet import ViTSupernet, trained_shaped  # noqa: E402
from tflm_vit.tflite_model import parse_model  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def measure(net, name, config):
    rep = np.random.default_rng(0).uniform(
        -1, 1, (8, config.resolution, config.resolution, 3)).astype(np.float32)
    model = export_tflite(net, config, rep)
    r = report.analyze(model, name=name)
    smallest = runtime.smallest_arena(model, r.arena_total)
    info = parse_model(model)
    params = sum(int(np.prod(t.shape)) for t in info.tensors
                 if t.is_constant and t.dtype in ("INT8", "INT32"))
    bmm_copies = r.tail_buckets.get("Persistent buffer data", (0, 0, 0))[0]
    return r, {
        "name": name, "config": config.to_dict(), "arena_total": r.arena_total,
        "arena_head": r.arena_head, "arena_tail": r.arena_tail, "flash": r.flash,
        "smallest_accepted_arena": smallest, "ops": len(r.ops), "params": params,
        "persistent_buffer_bytes": bmm_copies, "peak_live_activations": r.peak_live_bytes,
        "predicted_arena": predict(model).total,
    }


def problems(rows) -> list[str]:
    bad = []
    for r in rows:
        if not 0 <= r["arena_total"] - r["smallest_accepted_arena"] < 16:
            bad.append(f"{r['name']}: recorded {r['arena_total']:,} but the smallest arena "
                       f"accepted is {r['smallest_accepted_arena']:,}")
        if r["predicted_arena"] != r["arena_total"]:
            bad.append(f"{r['name']}: memory model {r['predicted_arena']:,} != recorded "
                       f"{r['arena_total']:,}")
    return bad


def write_table(doc, path):
    rows = doc["models"]
    lines = [
        "# Stock TFLM memory of the reference ViTs",
        "",
        f"Written by `{doc['command']}` at commit {doc['commit']}; arena figures from the "
        "`tflite-micro` wheel's recording allocator (bytes), each confirmed by a binary "
        f"search and by the memory model (claims broken: {len(doc['problems'])}).",
        "",
        "| model | config (res/patch, dim, depth, heads, MLP) | int8/int32 constant elements | ops | arena total "
        "| head | tail | of which kernel persistent buffers | smallest arena accepted "
        "| flash (.tflite) | fits 320 KB? |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["config"]
        cfg = (f"{c['resolution']}/{c['patch_size']}, {c['embed_dim']}, {c['depth']}, "
               f"{c['num_heads'][0]}, {c['mlp_ratio'][0]:g}")
        lines.append(
            f"| {r['name']} | {cfg} | {r['params']:,} | {r['ops']} | {r['arena_total']:,} "
            f"| {r['arena_head']:,} | {r['arena_tail']:,} | {r['persistent_buffer_bytes']:,} "
            f"| {r['smallest_accepted_arena']:,} | {r['flash']:,} "
            f"| {'yes' if r['arena_total'] <= 320 * 1024 else 'no'} |")
    lines += ["", "Tail = persistent memory; most of it in R1/R2 is BATCH_MATMUL's transposed "
              "copies of K and V (kernel persistent buffers).", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def plot(reports, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(reports), figsize=(5 * len(reports), 3.4))
    for ax, r in zip(np.atleast_1d(axes), reports):
        report.draw_timeline(ax, r, annotate_peak=False)
        ax.set_title(r.name)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", metavar="NAME",
                   help="measure only these rows and print them; the committed files are "
                        "left alone")
    a = p.parse_args(argv)
    net = trained_shaped(ViTSupernet(REFERENCE_SPACE))
    rows, reports = [], []
    for name, config in REFERENCE_CONFIGS.items():
        if a.only and name not in a.only:
            continue
        r, row = measure(net, name, config)
        rows.append(row)
        reports.append(r)
        print(f"{name}: arena {row['arena_total']:,} (head {row['arena_head']:,}, tail "
              f"{row['arena_tail']:,}), flash {row['flash']:,}", file=sys.stderr)
    doc = {**stamp("stock_tflm.py", argv), "problems": problems(rows), "models": rows}

    def write_rest():
        write_table(doc, os.path.join(RESULTS, "stock_tflm.md"))
        plot(reports, os.path.join(RESULTS, "stock_tflm.png"))

    return publish(doc, "stock_tflm", bool(a.only), write_rest)


if __name__ == "__main__":
    sys.exit(main())
