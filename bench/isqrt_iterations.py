"""How many Newton iterations the LayerNorm square root needs: the measured table
behind tflm_vit.twins.layernorm.DEFAULT_SQRT_ITERATIONS.

For token rows like a ViT's (widths 32-192, spread 3-60 LSB, offsets), runs the C
LayerNorm with 1..8 iterations and measures the square root's relative error over
the variance terms it meets and the outputs within 1 LSB of float-then-quantise.
Writes bench/results/isqrt_iterations.{json,md} (with the commit and command) and exits
non-zero when the code's default is not the iteration count the table chooses.

Run: .venv/bin/python bench/isqrt_iterations.py
"""

import json
import os
import sys

import numpy as np

from provenance import stamp  # bench/provenance.py, beside this script

from tflm_vit import _kernels as K  # noqa: E402
from tflm_vit.twins import layernorm as LN  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def rows(rng):
    for d in (32, 48, 64, 160, 192):
        for spread in (3, 10, 30, 60):
            x = rng.normal(rng.normal(0, 20, (64, 1)), spread, (64, d))
            yield d, np.clip(np.round(x), -128, 127).astype(np.int8)


def main(argv=None) -> int:
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--print", dest="print_only", action="store_true",
                   help="print the JSON instead of writing the committed files")
    a = p.parse_args(argv)
    rng = np.random.default_rng(0)
    data = list(rows(rng))
    table = []
    for it in range(1, 9):
        rel, within, exact = [], [], []
        for d, x in data:
            gamma, beta = rng.normal(1, 0.2, d), rng.normal(0, 0.2, d)
            p = LN.make_layernorm(gamma, beta, 1e-6, 0.05, 0.03, 0, it)
            got = K.layernorm(x, 0, p.eps_term, it, p.multipliers, p.shifts, p.bias)
            want = LN.layernorm_float_then_quantize(x, 0.05, 0, gamma, beta, 1e-6, 0.03, 0)
            err = np.abs(got.astype(int) - want.astype(int))
            within.append(np.mean(err <= 1))
            exact.append(np.mean(err == 0))
            xs = x.astype(np.int64)
            dev = d * xs - xs.sum(1, keepdims=True)
            v = (dev * dev).sum(1) + p.eps_term
            r = K.isqrt_newton(v.astype(np.uint64), it).astype(np.float64)
            rel.append(np.max(np.abs(r - np.sqrt(v)) / np.sqrt(v)))
        table.append({"iterations": it, "max_sqrt_relative_error": float(max(rel)),
                      "within_1lsb": float(np.mean(within)), "exact": float(np.mean(exact)),
                      "worst_row_within_1lsb": float(min(within))})
    chosen = next(t["iterations"] for t in table if t["worst_row_within_1lsb"] >= 0.999)
    result = {**stamp("isqrt_iterations.py", argv), "chosen": chosen,
              "default_in_code": LN.DEFAULT_SQRT_ITERATIONS, "table": table}
    if a.print_only:
        print(json.dumps(result, indent=1))
        return 0 if chosen == LN.DEFAULT_SQRT_ITERATIONS else 1
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "isqrt_iterations.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = ["# LayerNorm square root: Newton iterations vs error", "",
             f"Written by `{result['command']}` at commit {result['commit']} (start "
             "2^ceil(bits/2), 64-bit variance "
             "term D^3 var). Chosen: the fewest iterations with >= 99.9% of outputs within "
             f"1 LSB in every row: **{chosen}** (code default: {LN.DEFAULT_SQRT_ITERATIONS}).",
             "", "| iterations | max sqrt relative error | outputs exact | within 1 LSB "
             "| worst row within 1 LSB |", "|---|---|---|---|---|"]
    for t in table:
        lines.append(f"| {t['iterations']} | {t['max_sqrt_relative_error']:.2e} | "
                     f"{t['exact']:.4f} | {t['within_1lsb']:.4f} | "
                     f"{t['worst_row_within_1lsb']:.4f} |")
    with open(os.path.join(RESULTS, "isqrt_iterations.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if chosen != LN.DEFAULT_SQRT_ITERATIONS:  # the claim the code's default rests on
        print(f"FAIL the code's default, {LN.DEFAULT_SQRT_ITERATIONS} iterations, is not the "
              f"chosen {chosen}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
