"""The `tflm-vit` command: demo (the main job), search, train, export, convert, plan,
analyze, export-c."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

from tflm_vit import interrupt
from tflm_vit.errors import TflmVitError
from tflm_vit.units import byte_size


def _target(args) -> str:
    """The memory model's target for --target / --kernels (memory/targets.py)."""
    if args.target == "wheel":
        if args.kernels != "reference":
            raise TflmVitError("--kernels applies to --target cortex-m only")
        return "wheel"
    return "cortex-m" if args.kernels == "reference" else "cortex-m-cmsis-nn"


def _png_path(path: str | None) -> str | None:
    """--png must name a .png file in an existing folder (checked before any work)."""
    if path is None:
        return None
    if not path.lower().endswith(".png"):
        raise TflmVitError(f"--png {path}: the timeline is a PNG image; give a path ending "
                           "in .png")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TflmVitError(f"--png {path}: no such directory {folder}")
    return path


def _cmd_analyze(args) -> int:
    from tflm_vit import report
    from tflm_vit.memory import predict
    target = _target(args)
    _png_path(args.png)
    r = report.analyze(args.model, latency_cpu=args.cpu)
    if args.json:
        print(r.to_json(with_ops=not args.no_ops))
    else:
        print(report.format_report(r, with_ops=not args.no_ops))
        p = predict(args.model, target)
        if p.unmodelled and target == "wheel":
            from tflm_vit import runtime
            print(f"arena to give TFLM on wheel: {runtime.allocations(args.model).total:,} "
                  f"bytes (measured: the memory model does not know {', '.join(p.unmodelled)})")
        else:
            print(f"arena to give TFLM on {target}: {p.arena_to_give:,} bytes "
                  f"(memory model: head {p.head:,} + tail {p.tail:,})")
    if args.png:
        report.plot_timeline(r, args.png)
        print(f"timeline written to {args.png}")
    return 0


def _real_samples(model_path, data_name):
    """The first VERIFY_IMAGES test images of the data, at the model's resolution."""
    from tflm_vit.data import load_dataset
    from tflm_vit.pipeline import VERIFY_IMAGES, quantized_inputs
    from tflm_vit.export import prepare_images
    from tflm_vit.tflite_model import load_model
    data_bytes, info = load_model(model_path)
    _, h, w, c = info.tensors[info.inputs[0]].shape
    data = load_dataset(data_name, h)
    if data.x_test.shape[-1] != c:
        raise TflmVitError(f"--data {data_name}: images have {data.x_test.shape[-1]} channels, "
                           f"the model's input {c}")
    return quantized_inputs(data_bytes, prepare_images(data.x_test[:VERIFY_IMAGES], h))


def _cmd_convert(args) -> int:
    from tflm_vit.converters.convert import convert
    from tflm_vit.converters.summary import format_conversion
    _output_file(args.output)
    samples = None if args.data is None or args.no_verify else _real_samples(args.model,
                                                                           args.data)
    result = convert(args.model, fuse_mlp=not args.no_fuse_mlp, gelu=args.gelu,
                     sqrt_iterations=args.sqrt_iterations,
                     overwrite_image=not args.keep_image,
                     keep_unmapped=args.keep_unmapped, verify=not args.no_verify,
                     samples=samples)
    with open(args.output, "wb") as f:
        f.write(result.model)
    print(format_conversion(result))
    print(f"written to {args.output} ({len(result.model)} bytes)")
    return 0


def _cmd_plan(args) -> int:
    from tflm_vit import runtime
    from tflm_vit.memory import plan_model
    target = _target(args)
    from tflm_vit.errors import PlanError
    from tflm_vit.memory.api import exact_summary
    from tflm_vit.memory.planner import DEFAULT_TIME_LIMIT_S
    _output_file(args.output)
    limit = DEFAULT_TIME_LIMIT_S if args.time_limit is None else args.time_limit
    if not limit > 0:
        raise PlanError(f"--time-limit must be > 0 seconds, got {args.time_limit:g}")
    result = plan_model(args.model, budget=args.budget, exact=args.exact,
                        time_limit_s=limit, target=target)
    b, a = result.before, result.after
    if a.unmodelled and target != "wheel":
        from tflm_vit.memory.predict import UnmodelledOpsError
        raise UnmodelledOpsError(a.unmodelled, target)
    print(f"plan ({result.plan.method}; {exact_summary(result.plan)}): "
          f"{len(result.plan.chains)} chains of tensors sharing bytes (token "
          f"overwriting); figures for {target}")
    print(f"  arena before: {b.total:>10,} bytes (head {b.head:,} + tail {b.tail:,})")
    if target == "wheel":
        measured = runtime.allocations(result.model).total
        print(f"  arena after:  {a.total:>10,} bytes (head {a.head:,} + tail {a.tail:,}); "
              f"TFLM records {measured:,}")
    else:
        print(f"  arena after:  {a.total:>10,} bytes (head {a.head:,} + tail {a.tail:,})")
    print(f"  lower bound:  {a.lower_bound:>10,} bytes (head {a.head_lower_bound:,} + tail)")
    if a.unmodelled:  # wheel: TFLM's own figure for the planned model
        print(f"  the memory model does not know {', '.join(a.unmodelled)}: the figures "
              "above leave their allocations out; the arena to give is measured")
    with open(args.output, "wb") as f:
        f.write(result.model)
    print(f"written to {args.output}; give TFLM an arena of {result.arena_size:,} bytes "
          f"on {target}")
    return 0


def _cmd_export_c(args) -> int:
    from tflm_vit.export_c import export_c
    fw = export_c(args.model, args.output, _target(args))
    print(f"written {fw.stem}.h and {fw.stem}.cc (namespace {fw.namespace}): "
          f"{len(fw.builtins)} builtins "
          f"({', '.join(fw.builtins) or 'none'}) + {len(fw.custom_ops)} tflm-vit ops "
          f"({', '.join(fw.custom_ops) or 'none'}); arena {fw.arena_size:,} bytes on "
          f"{_target(args)}")
    return 0


def _space_and_data(args):
    from tflm_vit.data import load_dataset
    from tflm_vit.space import DEFAULT_SPACE, SearchSpace
    space = DEFAULT_SPACE
    if getattr(args, "space", None):
        with open(args.space) as f:
            space = SearchSpace.from_dict(json.load(f))
    data = load_dataset(args.data, space.max_resolution, seed=args.seed)
    if (data.num_classes, data.channels) != (space.num_classes, space.in_channels):
        space = SearchSpace.from_dict({**space.to_dict(), "num_classes": data.num_classes,
                                       "in_channels": data.channels})
    return space, data


def _train(args):
    from tflm_vit.train import TrainConfig, train_supernet
    space, data = _space_and_data(args)
    from tflm_vit.train import SUPERNET_RECIPE
    recipe = dataclasses.replace(SUPERNET_RECIPE, batch_size=args.batch_size)
    if args.epochs is not None:
        if args.steps is not None:
            raise TflmVitError("give --epochs or --steps, not both")
        if not args.epochs > 0:
            raise TflmVitError(f"--epochs must be positive, got {args.epochs:g}")
        args.steps = TrainConfig.epochs(args.epochs, len(data.y_train), recipe).steps
    steps = 1200 if args.steps is None else args.steps
    cfg = TrainConfig(steps=steps, recipe=recipe, seed=args.seed, checkpoint_dir=args.out)
    net, history = train_supernet(space, data, cfg, progress=not args.quiet)
    return net, space, data, history


def _cmd_train(args) -> int:
    _, _, data, history = _train(args)
    last = history[-1] if history else {}
    print(f"trained on '{data.name}' to step {last.get('step', args.steps or 1200)}; "
          f"checkpoint: {args.out}")
    return 0


def _parse_config(text: str):
    from tflm_vit.config import SubnetConfig
    from tflm_vit.space import REFERENCE_CONFIGS
    if text in REFERENCE_CONFIGS:
        return REFERENCE_CONFIGS[text]
    if os.path.isfile(text):
        with open(text) as f:
            text = f.read()
    elif not text.lstrip().startswith("{"):
        raise TflmVitError(f"--config {text}: not {', '.join(REFERENCE_CONFIGS)}, a JSON file "
                           "or a JSON string")
    return SubnetConfig.from_json(text)


def seed_int(text: str) -> int:
    """A seed for the data split and training: a whole number in [0, 2^32 - 1]."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is outside [0, 4294967295]")
    return value


def _output_file(path: str, flag: str = "-o") -> str:
    """An output file path whose folder exists, checked before any work is done."""
    if not path:
        raise TflmVitError(f"{flag}: give an output file")
    if os.path.isdir(path):
        raise TflmVitError(f"{flag} {path}: is a directory, give an output file")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise TflmVitError(f"{flag} {path}: no such directory {folder}")
    return path


DEMO_TEST_IMAGES = 2000  # demo / export accuracy: the first N test images (each model
# runs them one by one in the wheel's TFLM; Fashion-MNIST's 10,000 take minutes)


def _export_and_check(net, config, data, out_dir, quiet=False):
    """The pipeline (pipeline.py) on one subnet, with what it measured printed: the stock
    export and its accuracy in TFLM, then the converted and planned model's."""
    from tflm_vit import pipeline, report, runtime
    t0 = time.time()
    d = pipeline.deploy(net, config, data.x_train, verify_images=data.x_test)
    n = DEMO_TEST_IMAGES
    acc = pipeline.measure(d, net, data.x_test[:n], data.y_test[:n])
    stock_path = os.path.join(out_dir, "subnet_int8.tflite")
    with open(stock_path, "wb") as f:
        f.write(d.stock)
    path = os.path.join(out_dir, "subnet_tflm_vit.tflite")
    with open(path, "wb") as f:
        f.write(d.model)
    r = report.analyze(d.stock, name=f"subnet {config.short()}")
    png = os.path.join(out_dir, "subnet_timeline.png")
    report.plot_timeline(r, png)
    print(f"\nsubnet {config.short()}  ({config.num_tokens} tokens), exported, converted and "
          f"planned in {time.time() - t0:.1f} s -> {stock_path}")
    print(f"test images: {acc.images}   float top-1 {acc.float_top1:.3f}   "
          f"int8 TFLM top-1 {acc.stock_top1:.3f}")
    print(report.format_report(r, with_ops=False))
    print(f"live-bytes timeline: {png}")
    if not quiet:
        from tflm_vit.converters.summary import format_conversion
        print(format_conversion(d.conversion))
    stock = runtime.allocations(d.stock).total
    print(f"\nconverted + planned model (our ops, token overwriting) -> {path}")
    print(f"test images: {acc.images}   float top-1 {acc.float_top1:.3f}   "
          f"converted int8 TFLM top-1 {acc.top1:.3f}   agreement with float "
          f"{acc.agreement:.3f}")
    print(f"arena: stock {stock:,} -> converted + planned {d.arena_size:,} bytes "
          f"({stock / d.arena_size:.2f}x; lower bound {d.planned.after.lower_bound:,}), "
          f"flash {d.flash:,} bytes")
    return d, acc


class _OutputFolder:
    """Creates --out for a command; if the command fails, removes what it created, so a
    failed run leaves no empty or half-written folder behind (a folder that existed
    before is left as it was). With keep_on_interrupt (a resumable command: search), an
    interruption (Ctrl-C, SIGTERM) keeps the folder when it holds work to resume."""

    def __init__(self, path: str, keep_on_interrupt: bool = False):
        if os.path.exists(path) and not os.path.isdir(path):
            raise TflmVitError(f"--out {path}: exists and is not a folder")
        self.path, self.created = path, not os.path.exists(path)
        self.keep_on_interrupt = keep_on_interrupt

    def __enter__(self):
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as e:
            raise TflmVitError(f"--out {self.path}: cannot create the folder "
                               f"({e.strerror})") from None
        if not os.access(self.path, os.W_OK):
            raise TflmVitError(f"--out {self.path}: the folder is not writable")
        return self.path

    def __exit__(self, kind, value, tb):
        if _interrupted(kind) and self.keep_on_interrupt and _holds_work(self.path):
            return False
        if kind is not None and self.created:
            import shutil
            shutil.rmtree(self.path, ignore_errors=True)
        return False


def _holds_work(folder: str) -> bool:
    """Whether a folder holds any file but a lock (work a rerun resumes from)."""
    return any(f != ".lock" for _, _, files in os.walk(folder) for f in files)


def _cmd_demo(args) -> int:
    with _OutputFolder(args.out):
        return _demo(args)


def _demo(args) -> int:
    from tflm_vit.train import evaluate_float
    args.quiet = False
    # Every argument is checked before minutes of training (the subnet against the space
    # after it, which depends on the data's class count).
    chosen = _parse_config(args.config) if args.config else None
    t0 = time.time()
    net, space, data, history = _train(args)
    print(f"supernet trained on '{data.name}' ({len(data.x_train)} train / "
          f"{len(data.x_test)} test images) in {time.time() - t0:.0f} s; "
          f"checkpoint: {args.out}")
    for label, c in (("largest", space.largest()), ("smallest", space.smallest())):
        acc = evaluate_float(net, c, data.x_test, data.y_test)
        print(f"  {label:8s} {c.short():40s} float top-1 {acc:.3f}")
    config = chosen or space.largest()
    _export_and_check(net, config, data, args.out)
    return 0


def _cmd_export(args) -> int:
    from tflm_vit.data import load_dataset
    from tflm_vit.train import load_supernet
    net = load_supernet(args.checkpoint)
    config = _parse_config(args.config)
    data = load_dataset(args.data, net.space.max_resolution, seed=args.seed)
    from tflm_vit.errors import DataError
    if data.num_classes != net.space.num_classes:
        raise DataError(f"the checkpoint was trained on {net.space.num_classes} classes but "
                        f"--data {args.data} has {data.num_classes}: give the data it was "
                        "trained on (its accuracy would be meaningless)")
    if data.channels != net.space.in_channels:
        raise DataError(f"the checkpoint takes {net.space.in_channels}-channel images but "
                        f"--data {args.data} has {data.channels} channels")
    with _OutputFolder(args.out):
        _export_and_check(net, config, data, args.out)
    return 0


def _cmd_search(args) -> int:
    from tflm_vit.search.budgets import Budgets
    from tflm_vit.search.run import SearchSettings
    budgets = _budgets(args)
    base = SearchSettings.quick() if args.quick else SearchSettings()
    spaces, evo = base.spaces, base.evolution
    if args.rounds is not None:
        spaces = dataclasses.replace(spaces, rounds=_positive("rounds", args.rounds))
    if args.epochs_per_round is not None:
        spaces = dataclasses.replace(spaces, epochs_per_round=_positive_number(
            "epochs_per_round", args.epochs_per_round))
    for name, value in (("population", args.population), ("generations", args.generations)):
        if value is not None:
            evo = dataclasses.replace(evo, **{name: _positive(name, value)})
    settings = dataclasses.replace(base, spaces=spaces, evolution=evo)
    if args.supernet_epochs is not None:
        if not args.supernet_epochs >= 0:
            raise TflmVitError(f"--supernet-epochs must be >= 0, got {args.supernet_epochs:g}")
        settings = dataclasses.replace(settings, supernet_epochs=args.supernet_epochs)
    if args.finetune_epochs is not None:
        settings = dataclasses.replace(settings, finetune_epochs=_positive(
            "finetune_epochs", args.finetune_epochs))
    if args.finetune_minutes is not None:  # 0: no time limit, all --finetune-epochs
        if not args.finetune_minutes >= 0:
            raise TflmVitError(f"--finetune-minutes must be >= 0, got {args.finetune_minutes:g}")
        settings = dataclasses.replace(settings, finetune_minutes=args.finetune_minutes or None)
    if args.no_teacher:
        if args.teacher:
            raise TflmVitError("--teacher and --no-teacher contradict each other")
        settings = dataclasses.replace(settings, teacher=False)
    if args.teacher and not os.path.isfile(os.path.join(args.teacher, "meta.json")):
        raise TflmVitError(f"--teacher {args.teacher}: not a teacher folder (no meta.json; "
                           "teachers are cached under $TFLM_VIT_CACHE/teachers)")
    assert isinstance(budgets, Budgets)
    with _OutputFolder(args.out, keep_on_interrupt=True):
        return _search(args, budgets, settings)


def _budgets(args):
    """The search's budgets: a board's (--board), each overridden by --sram, --flash,
    --latency; or those flags alone."""
    from tflm_vit.search.boards import board
    from tflm_vit.search.budgets import Budgets
    given = Budgets.parse(args.sram, args.flash, args.latency)
    if args.board:
        b = board(args.board)
        if args.cpu and args.cpu != b.cpu:
            raise TflmVitError(f"--cpu {args.cpu}: board {b.name} has a {b.cpu}")
        kernels = args.kernels or "cmsis_nn"
        if args.target == "wheel":
            raise TflmVitError("--target wheel: a board's arena is its Cortex-M build's")
        return b.budgets(given.sram, given.flash, given.latency, kernels)
    args.kernels = args.kernels or "reference"
    budgets = Budgets.parse(args.sram, args.flash, args.latency, target=_target(args),
                            cpu=args.cpu or "cortex-m7")
    if not budgets.given:
        raise TflmVitError("give a board (--board, e.g. stm32f746) or at least one budget: "
                           "--sram, --flash or --latency")
    return budgets


def _positive(name: str, value: int) -> int:
    if value <= 0:
        raise TflmVitError(f"--{name.replace('_', '-')} must be positive, got {value}")
    return value


def _positive_number(name: str, value: float) -> float:
    if not value > 0:
        raise TflmVitError(f"--{name.replace('_', '-')} must be positive, got {value:g}")
    return value


def _search(args, budgets, settings) -> int:
    from rich.console import Console

    from tflm_vit.search import report as search_report
    from tflm_vit.search.run import run_search
    console = Console(stderr=True)
    space, data = _search_space_and_data(args)
    t0 = time.time()

    def say(text):
        console.log(f"[{time.time() - t0:6.0f} s] {text}")

    from tflm_vit.search.parallel import executor
    if args.no_ray and args.ray_address:
        raise TflmVitError("--no-ray and --ray-address contradict each other")
    if args.workers is not None and args.workers <= 0:
        raise TflmVitError(f"--workers must be positive, got {args.workers}")
    say(f"budgets: {budgets.describe()} (arena on {budgets.target}, latency on {budgets.cpu})")
    if not args.ray_timeout > 0:
        raise TflmVitError(f"--ray-timeout must be positive, got {args.ray_timeout:g}")
    with executor(args.ray_address, args.workers, not args.no_ray, args.ray_timeout) as jobs:
        say(f"jobs run {'in this process' if args.no_ray else f'on Ray ({jobs.workers} CPUs)'}")
        result = run_search(space, data, budgets, args.out, settings, args.seed, say, jobs,
                            teacher_path=args.teacher)
    with open(os.path.join(args.out, "spaces", "log.json")) as f:
        log = json.load(f)
    board = None
    if args.board:
        from tflm_vit.search.boards import board as find_board
        board = find_board(args.board)
    paths = search_report.write(result, args.out, log, board, time.time() - t0)
    a = result.accuracy
    print(f"searched on '{data.name}' in {time.time() - t0:.0f} s under {budgets.describe()}")
    print(f"  space:  {result.space_point['description']}")
    print(f"  subnet: {result.config.short()}")
    print(f"  test top-1: float {a.float_top1:.4f}, converted + planned int8 in TFLM "
          f"{a.top1:.4f} ({a.images} images)")
    for line in search_report.usage_lines(result, board):
        print(f"  {line}")
    print(f"  model: {paths['model']}; report: {paths['markdown']}; plots: "
          f"{paths['spaces']}, {paths['pareto']}")
    return 0


def _search_space_and_data(args):
    """--space, or the default for the data: the data-derived space (its image size,
    channels and classes; tflm_vit.space.space_for_data), the built-in small space with
    --quick."""
    from tflm_vit.data import load_dataset
    from tflm_vit.space import space_for_data
    if args.space or args.quick:
        return _space_and_data(args)
    data = load_dataset(args.data, None, seed=args.seed)
    return space_for_data(data.resolution, data.channels, data.num_classes), data


def build_parser() -> argparse.ArgumentParser:
    from tflm_vit.memory.planner import DEFAULT_TIME_LIMIT_S
    p = argparse.ArgumentParser(prog="tflm-vit", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def target_args(sp, default):
        sp.add_argument("--target", choices=("cortex-m", "wheel"), default=default,
                        help="the TFLM build whose arena to report: a 32-bit Cortex-M "
                             f"firmware or the x86-64 Python wheel (default {default})")
        sp.add_argument("--kernels", choices=("reference", "cmsis_nn"), default="reference",
                        help="TFLM kernels of the Cortex-M build (OPTIMIZED_KERNEL_DIR)")

    def data_args(sp):
        sp.add_argument("--data", default="digits",
                        help="'digits' (built in), 'fashion-mnist' (Debian's package "
                             "dataset-fashion-mnist), a folder of IDX files, or a folder "
                             "with one sub-folder per class")
        sp.add_argument("--space", help="SearchSpace JSON (default: the built-in space)")
        sp.add_argument("--seed", type=seed_int, default=0)

    d = sub.add_parser("demo", help="train a supernet, export a subnet, run it in TFLM")
    data_args(d)
    d.add_argument("--steps", type=int, help="supernet training steps (default 1200)")
    d.add_argument("--epochs", type=float, help="supernet training in epochs of the data")
    d.add_argument("--batch-size", type=int, default=64)
    d.add_argument("--config", help="subnet to export: R0/R1/R2, a JSON file or string "
                   "(default: the largest subnet)")
    d.add_argument("--out", default="runs/demo")
    d.set_defaults(fn=_cmd_demo)

    s = sub.add_parser("search", help="search the subnet that fits SRAM / flash / latency "
                       "budgets (MCUFormer), deploy it and measure it in TFLM")
    data_args(s)
    s.add_argument("--board", help="the microcontroller the model ships on; its SRAM, flash "
                   "and latency budgets (stm32f401, stm32f411, stm32f427, stm32f746, "
                   "stm32h743); --sram, --flash, --latency override them")
    s.add_argument("--sram", help="arena budget: bytes or with a unit (320KB; KB = KiB = 1024)")
    s.add_argument("--flash", help="model size budget: bytes or with a unit (1MB)")
    s.add_argument("--latency", help="instruction budget of one inference on --cpu "
                   "(20M = 20,000,000), from the latency model")
    s.add_argument("--cpu", choices=("cortex-m7", "cortex-m4"),
                   help="the latency model's CPU (default: the board's, else cortex-m7)")
    s.add_argument("--target", choices=("cortex-m", "wheel"), default="cortex-m",
                   help="the TFLM build whose arena the SRAM budget holds (default cortex-m)")
    s.add_argument("--kernels", choices=("reference", "cmsis_nn"),
                   help="TFLM kernels of the Cortex-M build (default: cmsis_nn with --board, "
                        "else reference)")
    s.add_argument("--quick", action="store_true", help="a small search (minutes)")
    s.add_argument("--rounds", type=int, help="space-evolution rounds")
    s.add_argument("--epochs-per-round", type=float,
                   help="supernet epochs per candidate space per round")
    s.add_argument("--population", type=int, help="evolutionary search population")
    s.add_argument("--generations", type=int, help="evolutionary search generations")
    s.add_argument("--supernet-epochs", type=float,
                   help="epochs training the chosen space's supernet before its search")
    s.add_argument("--finetune-epochs", type=int, help="epochs (at most) the winner trains "
                   "on its own, to convergence")
    s.add_argument("--finetune-minutes", type=float, help="time budget of that training on "
                   "this machine (default 40; 0: none, all --finetune-epochs)")
    s.add_argument("--teacher", help="a cached teacher folder to distil from (default: the "
                   "one for this training set, trained once and cached)")
    s.add_argument("--no-teacher", action="store_true", help="no knowledge distillation")
    s.add_argument("--out", default="runs/search", help="work and output folder (an "
                   "interrupted search run again with the same arguments resumes)")
    s.add_argument("--ray-address", help="join this Ray cluster ('auto', or "
                   "ray://HEAD:10001) instead of starting a local Ray")
    s.add_argument("--ray-timeout", type=float, default=10.0,
                   help="seconds to wait for the --ray-address cluster to answer")
    s.add_argument("--workers", type=int, help="CPUs of the local Ray (default: all)")
    s.add_argument("--no-ray", action="store_true", help="run every job in this process")
    s.set_defaults(fn=_cmd_search)

    t = sub.add_parser("train", help="train (or resume) a supernet")
    data_args(t)
    t.add_argument("--steps", type=int, help="supernet training steps (default 1200)")
    t.add_argument("--epochs", type=float, help="supernet training in epochs of the data")
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--out", required=True, help="checkpoint folder (resumes if present)")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(fn=_cmd_train)

    e = sub.add_parser("export", help="export a subnet of a trained supernet to int8 TFLite")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--config", required=True, help="R0/R1/R2, a JSON file or JSON string")
    e.add_argument("--data", default="digits")
    e.add_argument("--seed", type=seed_int, default=0)
    e.add_argument("--out", default="runs/export")
    e.set_defaults(fn=_cmd_export)

    c = sub.add_parser("convert", help="rewrite an exported int8 ViT onto tflm-vit's TFLM ops")
    c.add_argument("model", help="input .tflite (from `tflm-vit export`)")
    c.add_argument("-o", "--output", required=True, help="output .tflite")
    c.add_argument("--gelu", choices=("table", "shift"), default="table",
                   help="GELU as an exact lookup table or the integer approximation")
    c.add_argument("--no-fuse-mlp", action="store_true",
                   help="separate linear / GELU / linear ops instead of TV_MLP")
    c.add_argument("--sqrt-iterations", type=int, help="LayerNorm Newton iterations")
    c.add_argument("--keep-image", action="store_true",
                   help="the patch embedding writes its tokens beside the image, not over "
                        "it (more arena; the input tensor survives inference)")
    c.add_argument("--keep-unmapped", action="store_true",
                   help="leave ops outside any known pattern instead of failing")
    c.add_argument("--no-verify", action="store_true", help="skip the in-TFLM verification")
    c.add_argument("--data", help="verify on the first 8 test images of this data ('digits' "
                   "or an image folder) instead of 8 seeded random images")
    c.set_defaults(fn=_cmd_convert)

    pl = sub.add_parser("plan", help="write a token-overwriting arena plan into a model "
                        "(TFLM's offline memory plan; any TFLM app honours it)")
    pl.add_argument("model", help="input .tflite (typically from `tflm-vit convert`)")
    pl.add_argument("-o", "--output", required=True, help="output .tflite")
    pl.add_argument("--budget", type=byte_size,
                    help="fail unless the arena fits: bytes, or with a unit (320KB; KB = "
                         "KiB = 1024 bytes)")
    target_args(pl, "wheel")
    how = pl.add_mutually_exclusive_group()
    how.add_argument("--exact", dest="exact", action="store_true", default=None,
                     help="always run CP-SAT (by default it runs only when the heuristic "
                          "is above the lower bound)")
    how.add_argument("--heuristic", dest="exact", action="store_false",
                     help="the first-fit heuristic alone, no CP-SAT")
    pl.add_argument("--time-limit", type=float, default=None, metavar="S",
                    help=f"CP-SAT's time limit in seconds (default {DEFAULT_TIME_LIMIT_S:g})")
    pl.set_defaults(fn=_cmd_plan)

    a = sub.add_parser("analyze", help="TFLM arena/flash report of a .tflite model")
    a.add_argument("model")
    a.add_argument("--png", help="write a live-bytes-per-op timeline here")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.add_argument("--no-ops", action="store_true", help="summary only, no per-op table")
    a.add_argument("--cpu", default="cortex-m7", choices=("cortex-m7", "cortex-m4"),
                   help="CPU of the latency model's instruction counts (default cortex-m7)")
    target_args(a, "wheel")
    a.set_defaults(fn=_cmd_analyze)

    x = sub.add_parser("export-c", help="write a model as C++ firmware source (array, arena "
                       "size, RegisterOps for exactly its ops)")
    x.add_argument("model", help="input .tflite (typically from `tflm-vit plan`)")
    x.add_argument("-o", "--output", required=True,
                   help="output stem: DIR/model writes DIR/model.h and DIR/model.cc")
    target_args(x, "cortex-m")
    x.set_defaults(fn=_cmd_export_c)
    return p


def _interrupted(kind) -> bool:
    # The KeyboardInterrupt a signal raises may surface wrapped in another exception
    # (TensorFlow's converter re-raises what interrupts it): a run that was asked to stop
    # reports the stop, not the wrapper.
    return interrupt.requested() or (kind is not None and issubclass(kind, KeyboardInterrupt))


def _last_words(args) -> str:
    out = getattr(args, "out", None)
    if args.command == "search" and out and os.path.isdir(out) and _holds_work(out):
        return (f"tflm-vit {args.command}: interrupted; the work in {out} is kept: run the "
                "same command again to resume")
    return f"tflm-vit {args.command}: interrupted"


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    with interrupt.handled(lambda: _last_words(args)):  # Ctrl-C and SIGTERM stop cleanly
        try:
            return args.fn(args)
        except BaseException as e:  # noqa: BLE001 - sorted below, the rest re-raised
            if _interrupted(type(e)):
                print(_last_words(args), file=sys.stderr)
                return interrupt.EXIT_STATUS
            if isinstance(e, (TflmVitError, FileNotFoundError)):
                print(f"tflm-vit {args.command}: error: {e}", file=sys.stderr)
                return 2
            raise


if __name__ == "__main__":
    sys.exit(main())
