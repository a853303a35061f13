"""Models on an emulated Cortex-M against the wheel and the memory model: each model's
output on target (TFLM built with our ops, tflm_vit/firmware/qemu.py) against the
tflite-micro wheel's on the same input, the arena TFLM records there against the memory
model's prediction for that target, and, for planned models, a run in exactly the arena
the project tells the user to give and one 16 bytes below it, which must fail with
TFLM's error. The firmware benchmark (bench/firmware.py), the any-model and search
benchmarks and tests/test_firmware.py share it."""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np

from tflm_vit import runtime
from tflm_vit.converters.convert import convert
from tflm_vit.export import export_tflite
from tflm_vit.firmware import qemu
from tflm_vit.memory import plan_model, predict
from tflm_vit.memory.targets import get_target
from tflm_vit.space import DEFAULT_SPACE, REFERENCE_CONFIGS, REFERENCE_SPACE
from tflm_vit.supernet import ViTSupernet, seeded_supernet

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


def variants(name: str, net, config, rep) -> list[Model]:
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
    return variants("R0", reference_net(), REFERENCE_CONFIGS["R0"], rep)


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
    out += variants("demo", demo_net, DEFAULT_SPACE.largest(), rep)
    rng = np.random.default_rng(seed)
    for i in range(random_subnets):
        config = DEFAULT_SPACE.sample(rng)
        out += variants(f"random{i}", demo_net, config, rep)
    return out


def wheel_output(m: Model) -> bytes:
    """The wheel's output for the model's input; computed once per model, not per build."""
    if m.wheel is None:
        interp, _ = runtime.make_interpreter(m.data)
        m.wheel = runtime.invoke(interp, m.image[np.newaxis])[0].astype(np.int8).tobytes()
    return m.wheel


def parse_output(output: str) -> tuple[bytes, int]:
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
        out, used = parse_output(result.output)
        row = {"name": m.name, "variant": m.variant, "kernels": build.kernels,
               "cpu": build.cpu, "arena_measured": used, "arena_predicted": prediction.total,
               "outputs_match_wheel": out == wheel_output(m),
               "arena_wheel_predicted": predict(m.data).total, "flash": len(m.data)}
        if m.variant == "planned":
            row["lower_bound"] = prediction.lower_bound
            row["patch_embed_over_image"] = overwrites_image(m.data)
            row.update(planned_checks(build, target, prediction, model_path, input_path))
        rows.append(row)
    return rows


def overwrites_image(model: bytes) -> bool:
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


def planned_checks(build, target, prediction, model_path, input_path) -> dict:
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


@dataclasses.dataclass(frozen=True)
class ArenaRun:
    arena_used: int | None    # TFLM's recorded arena on target; None: it did not run
    matches_wheel: bool       # its output equals the wheel's on the same input
    instructions: int | None  # one Invoke(), when counted


def run_in_arena(model: bytes, image: np.ndarray, cpu: str, arena: int,
                 kernels: str = "cmsis_nn", count: bool = False) -> ArenaRun:
    """The model once on the emulated `cpu` (TFLM with `kernels` and our ops) in an arena
    of exactly `arena` bytes, its output against the wheel's on `image`; `count` also
    counts its instructions (tflm_vit/firmware/instructions.py)."""
    import tempfile

    from tflm_vit.firmware import instructions
    build = qemu.build(cpu, kernels)
    with tempfile.TemporaryDirectory() as tmp:
        path, inp = pathlib.Path(tmp) / "model.tflite", pathlib.Path(tmp) / "input.bin"
        path.write_bytes(model)
        inp.write_bytes(image.tobytes())
        run = qemu.run(build.model_runner, build.cpu, [path, inp, arena])
        if run.returncode != 0 or "TFLM_VIT_RUN_PASS" not in run.output:
            return ArenaRun(None, False, None)
        got, used = parse_output(run.output)
        wheel = wheel_output(Model("model", "planned", model, image))
        n = instructions.count(build, path, inp, arena).total if count else None
    return ArenaRun(used, got == wheel, n)
