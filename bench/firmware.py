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
import dataclasses
import pathlib
import sys
import tempfile

import numpy as np

from tflm_vit import runtime
from tflm_vit.converters.convert import convert
from tflm_vit.export import export_tflite
from tflm_vit.memory import plan_model, predict
from tflm_vit.memory.targets import get_target
from tflm_vit.space import DEFAULT_SPACE, REFERENCE_CONFIGS, REFERENCE_SPACE
from tflm_vit.supernet import ViTSupernet, seeded_supernet

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO / "custom_ops" / "firmware"))
import qemu  # noqa: E402  (custom_ops/firmware/qemu.py: build and run under QEMU)
sys.path.insert(0, str(REPO / "bench"))
from provenance import publish, stamp  # noqa: E402

CPUS = ("cortex-m7", "cortex-m4")
KERNELS = ("reference", "cmsis_nn")
# The memory model's target for each kernel set (tflm_vit/memory/targets.py).
TARGET_OF = {"reference": "cortex-m", "cmsis_nn": "cortex-m-cmsis-nn"}
VARIANTS = ("stock", "converted", "planned")
RANDOM_SUBNETS = 5
DEMO_STEPS = 1200  # `tflm-vit demo`'s default


@dataclasses.dataclass
class Model:
    name: str
    variant: str
    data: bytes
    image: np.ndarray  # one int8 input
    wheel: bytes | None = None  # the wheel's output on it (wheel_output)


def _variants(name: str, net, config, rep) -> list[Model]:
    stock = export_tflite(net, config, rep)
    converted = convert(stock, verify=False).model
    planned = plan_model(converted).model
    shape = (config.resolution, config.resolution, 3)
    image = np.random.default_rng(len(name)).integers(-128, 128, shape, dtype=np.int8)
    return [Model(name, v, bytes(m), image)
            for v, m in zip(VARIANTS, (stock, converted, planned))]


def reference_net(seed: int = 0) -> ViTSupernet:
    """The untrained reference supernet with the same weights on every run. Its arena does
    not depend on the weights, but instruction counts do (stock QUANTIZE's rounding took
    9 % more instructions on one draw than on another), and the speed benchmark's
    regeneration test compares them."""
    return seeded_supernet(REFERENCE_SPACE, seed)


def models_r0() -> list[Model]:
    """R0 from the untrained, seeded reference supernet."""
    rep = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    return _variants("R0", reference_net(), REFERENCE_CONFIGS["R0"], rep)


def models(demo_net=None, demo_images=None, random_subnets: int = RANDOM_SUBNETS,
           seed: int = 2026, demo_steps: int = DEMO_STEPS) -> list[Model]:
    """R0, the demo model (`demo_net`'s largest subnet, calibrated on `demo_images`;
    trained on digits here as the demo does when not given) and random subnets of the
    default space (the demo's supernet, weights shared)."""
    out = models_r0()
    if demo_net is None:
        from tflm_vit.data import load_digits
        from tflm_vit.train import TrainConfig, train_supernet
        data = load_digits(DEFAULT_SPACE.max_resolution)
        demo_net, _ = train_supernet(DEFAULT_SPACE, data, TrainConfig(steps=demo_steps),
                                     progress=False)
        demo_images = data.x_train
    rep = np.asarray(demo_images[:32], np.float32)
    out += _variants("demo", demo_net, DEFAULT_SPACE.largest(), rep)
    rng = np.random.default_rng(seed)
    for i in range(random_subnets):
        config = DEFAULT_SPACE.sample(rng)
        out += _variants(f"random{i}", demo_net, config, rep)
    return out


def wheel_output(m: Model) -> bytes:
    """The wheel's output for the model's input; computed once per model, not per build."""
    if m.wheel is None:
        interp, _ = runtime.make_interpreter(m.data)
        m.wheel = runtime.invoke(interp, m.image[np.newaxis])[0].astype(np.int8).tobytes()
    return m.wheel


def _parse(output: str) -> tuple[bytes, int]:
    lines = dict(line.split(" ", 1) for line in output.splitlines() if " " in line)
    return bytes.fromhex(lines["output"].strip()), int(lines["arena_used_bytes"])


def check_on_target(build: qemu.Build, ms: list[Model], workdir: pathlib.Path) -> list[dict]:
    """One row per model: on-target output vs wheel, measured (in a large arena) vs
    predicted arena; planned models also in exactly the arena to give, and below it."""
    target = get_target(TARGET_OF[build.kernels])
    rows = []
    for m in ms:
        model_path = workdir / f"{m.name}_{m.variant}.tflite"
        input_path = workdir / f"{m.name}_input.bin"
        model_path.write_bytes(m.data)
        input_path.write_bytes(m.image.tobytes())
        prediction = predict(m.data, target)
        result = qemu.run(build.model_runner, build.cpu, [model_path, input_path, 1 << 20],
                          marker="TFLM_VIT_RUN_PASS")
        out, used = _parse(result.output)
        row = {"name": m.name, "variant": m.variant, "kernels": build.kernels,
               "cpu": build.cpu, "arena_measured": used, "arena_predicted": prediction.total,
               "outputs_match_wheel": out == wheel_output(m),
               "arena_wheel_predicted": predict(m.data).total, "flash": len(m.data)}
        if m.variant == "planned":
            row["lower_bound"] = prediction.lower_bound
            row["patch_embed_over_image"] = _overwrites_image(m.data)
            row.update(_planned_checks(build, target, prediction, model_path, input_path))
        rows.append(row)
    return rows


def _overwrites_image(model: bytes) -> bool:
    """The plan writes the patch embedding's tokens over the image (at its lead)."""
    from tflm_vit.memory.offline_plan import plan_of
    from tflm_vit.memory.scratch import our_options
    from tflm_vit.tflite_model import parse_model
    info = parse_model(model)
    offsets, op = plan_of(info), info.ops[0]
    if op.name != "TV_PATCH_EMBED" or offsets is None:
        return False
    lead = our_options(info, op)["output_lead"]
    return lead >= 0 and offsets[op.outputs[0]] == offsets[op.inputs[0]] - lead


# For tiny models the room TFLM needs while it plans, not the recorded total, sets the
# arena; the memory model errs high there by at most this much (docs/memory_model.md).
PLANNING_ROOM_MARGIN = 32


def _planned_checks(build, target, prediction, model_path, input_path) -> dict:
    """The planned model in exactly the arena we tell the user to give, and below it."""
    give = prediction.arena_to_give
    m = target.arena_multiple
    runs = lambda arena: qemu.run(build.model_runner, build.cpu,  # noqa: E731
                                  [model_path, input_path, arena])
    at = runs(give)
    below = runs(give - 16)
    out = {"arena_to_give": give,
           "runs_in_arena_to_give": at.returncode == 0 and "TFLM_VIT_RUN_PASS" in at.output,
           "fails_16_below": below.returncode != 0
           and "TFLM_VIT_RUN_FAIL AllocateTensors" in below.output,
           "set_by": "recorded total" if give == -(-prediction.total // m) * m
           else "planning room"}
    if out["set_by"] == "planning room":  # find the smallest arena that works (4-byte steps)
        lo, hi = prediction.total - 1, give
        while hi - lo > 4:
            mid = (lo + hi) // 2 // 4 * 4
            lo, hi = (lo, mid) if runs(mid).returncode == 0 else (mid, hi)
        out["smallest_arena"] = hi
    return out


def problems(rows: list[dict]) -> list[str]:
    """Every claim a row breaks, as one line each."""
    bad = []
    for r in rows:
        where = f"{r['name']} {r['variant']} on {r['cpu']} ({r['kernels']})"
        if not r["outputs_match_wheel"]:
            bad.append(f"{where}: output differs from the wheel's")
        if r["arena_measured"] != r["arena_predicted"]:
            bad.append(f"{where}: arena measured {r['arena_measured']} != predicted "
                       f"{r['arena_predicted']}")
        if r["variant"] != "planned":
            continue
        if r["arena_measured"] > 1.01 * r["lower_bound"]:
            bad.append(f"{where}: arena measured {r['arena_measured']} > 1.01 x the bound "
                       f"{r['lower_bound']}")
        if not r["runs_in_arena_to_give"]:
            bad.append(f"{where}: does not run in the arena to give, {r['arena_to_give']}")
        if r["set_by"] == "recorded total" and not r["fails_16_below"]:
            bad.append(f"{where}: still runs 16 bytes below the arena to give")
        if r["set_by"] == "planning room" and not (
                0 <= r["arena_to_give"] - r["smallest_arena"] <= PLANNING_ROOM_MARGIN):
            bad.append(f"{where}: arena to give {r['arena_to_give']} is not within "
                       f"{PLANNING_ROOM_MARGIN} bytes above the smallest, {r['smallest_arena']}")
    return bad


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
