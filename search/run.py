"""The search, end to end: MCUFormer's space evolution picks the (rank, tokens) space,
the chosen space's supernet is trained on (the paper trains the evolved space's supernet
in full; the evolution's rounds only rank spaces), the evolutionary search picks the
subnet within the budgets, the winner inherits its supernet weights and trains on, on its
own, to convergence (tflm_vit/subnet_training.py), and is deployed through the library's
pipeline (export -> convert -> plan) and measured in TFLM on the test set, which nothing
before this last step looks at.

Every supernet is budget-aware: a space trains only up to its largest subnet that fits
the budgets (CostModel.largest_within), so no training goes to subnets the board cannot
run. Every training (supernets, the final one) uses the recipe (tflm_vit/recipe.py) and
the teacher's soft targets (tflm_vit/teacher.py: a CNN trained once per training set and
cached).

State lives in the work folder: the space evolution's log and weights, the cost cache,
the validation accuracies, the final training's checkpoint. An interrupted search run
again with the same arguments resumes and, being seeded and deterministic, ends with the
same result.
"""

from __future__ import annotations

import dataclasses
import json
import os


from tflm_vit.search.budgets import Budgets
from tflm_vit.search.costs import CostModel
from tflm_vit.search.jsonlines import JsonLines
from tflm_vit.search.lock import work_folder_lock
from tflm_vit.search.evolution import EvolutionResult, EvolutionSettings, evolve
from tflm_vit.search.space_evolution import (EvolutionOfSpaceSettings, SpaceEvolution,
                                             describe, load_weights, save_weights)
from tflm_vit.config import SubnetConfig
from tflm_vit.data import Dataset, validation_split
from tflm_vit.recipe import Recipe
from tflm_vit.space import SearchSpace

QAT_THRESHOLD = 0.005  # int8 in TFLM this far below float on validation: train quantised
QAT_EPOCHS = 2


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    spaces: EvolutionOfSpaceSettings = EvolutionOfSpaceSettings()
    evolution: EvolutionSettings = EvolutionSettings()
    supernet_epochs: float = 1.5  # the chosen space's supernet, after the space evolution
    finetune_epochs: int = 100  # the winner on its own, at most
    finetune_minutes: float | None = 40.0  # its time budget (None: all finetune_epochs)
    patience: int = 5  # epochs without a validation gain that end the final training
    #                    (counted only in its schedule's last quarter: fit.ANNEALED)
    recipe: Recipe = Recipe()  # the final training's
    teacher: bool = True  # distil from the cached CNN teacher
    val_fraction: float = 0.1  # of the training set, held out to pick by
    val_images: int = 2000  # validation images each subnet is scored on (at most)

    def __post_init__(self):
        from tflm_vit.errors import ConfigError
        if int(self.finetune_epochs) <= 0:
            raise ConfigError("finetune_epochs", f"must be positive (the shipped model trains "
                              f"on its own), got {self.finetune_epochs}")
        if self.supernet_epochs < 0:
            raise ConfigError("supernet_epochs", f"must be >= 0, got {self.supernet_epochs}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SearchSettings":
        return cls(EvolutionOfSpaceSettings(**d["spaces"]), EvolutionSettings(**d["evolution"]),
                   **{k: (Recipe(**v) if k == "recipe" else v) for k, v in d.items()
                      if k not in ("spaces", "evolution")})

    @classmethod
    def quick(cls) -> "SearchSettings":
        """The README's main job: minutes on two CPU cores."""
        return cls(EvolutionOfSpaceSettings(initial_points=2, rounds=2, epochs_per_round=4,
                                            samples=4),
                   EvolutionSettings(population=8, generations=3), supernet_epochs=6,
                   finetune_epochs=15, finetune_minutes=None, val_images=500, teacher=False)


@dataclasses.dataclass
class SearchResult:
    config: SubnetConfig
    space_point: dict
    evolution: EvolutionResult
    budgets: Budgets
    deployment: object  # pipeline.Deployment
    accuracy: object  # pipeline.Accuracy on the test set
    search_cost: dict  # supernet training steps and subnets evaluated, in all
    training: object = None  # fit.FitResult of the final training
    teacher: object = None  # teacher.Teacher, or None
    quantisation: dict | None = None  # validation float vs int8, and whether QAT ran

    @property
    def val_accuracy(self) -> float:
        """The winner's validation top-1 with the shared weights, before its training."""
        return self.evolution.best.accuracy

    def to_dict(self) -> dict:
        d = self.deployment
        return {
            "config": json.loads(self.config.to_json()),
            "space": self.space_point,
            "budgets": self.budgets.to_dict(),
            "cost": self.evolution.best.cost.to_dict(),
            "val_top1_shared_weights": self.val_accuracy,
            "test": dataclasses.asdict(self.accuracy),
            "arena_to_give": d.arena_size,
            "flash": d.flash,
            "training": None if self.training is None else self.training.to_dict(),
            "teacher": None if self.teacher is None else {
                "path": self.teacher.path, "held_out_top1": self.teacher.held_out_top1,
                "seconds": self.teacher.seconds},
            "quantisation": self.quantisation,
            "memory_per_op": [dataclasses.asdict(o) for o in d.planned.after.ops],
            "evaluations": self.evolution.evaluations,
            "search_cost": self.search_cost,
            "pareto": [c.to_dict() for c in self.evolution.pareto],
            "evaluated": [c.to_dict() for c in self.evolution.evaluated],
        }


class _Memo:
    """A function of a config memoised in a JSON-lines file (validation accuracies)."""

    def __init__(self, fn, path: str, tag: str):
        self.fn, self.values = fn, JsonLines(path, tag)

    def __call__(self, config: SubnetConfig):
        key = config.to_json()
        if key not in self.values:
            self.values.add(key, self.fn(config))
        return self.values[key]


def absolute(path: str) -> str:
    """Paths jobs receive must not depend on the working directory: a Ray worker's is
    not the caller's (a relative --out failed there)."""
    return os.path.abspath(path)


def validation_set(data: Dataset, settings: SearchSettings, seed: int):
    """(train, validation) split of data's training set (the test set stays unseen)."""
    return validation_split(data, settings.val_fraction, seed)


def search_subset(val: Dataset, settings: SearchSettings) -> Dataset:
    """The validation images each subnet is scored on during the search (the first
    val_images: scoring hundreds of subnets on all of them would cost more than it tells)."""
    n = min(settings.val_images, len(val.y_test))
    return dataclasses.replace(val, x_test=val.x_test[:n], y_test=val.y_test[:n])


def prepare(base: SearchSpace, data: Dataset, budgets: Budgets, workdir: str,
            settings: SearchSettings, seed: int, say, executor=None,
            cost_cache: str | None = None, teacher_path: str | None = None):
    """What every method starts from: determinism, the cost model (checked against the
    budgets before any training; its cache `cost_cache`, default in the work folder, can
    be shared by searches on one target: a cost depends only on the architecture), the
    train / validation split and the teacher of that training split (cached: trained once,
    minutes, then shared by every search on the same split). Returns (costs, train, val,
    teacher)."""
    import tensorflow as tf

    from tflm_vit.teacher import teacher_for
    tf.config.experimental.enable_op_determinism()  # a resumed search ends the same
    os.makedirs(workdir, exist_ok=True)
    costs = CostModel.for_budgets(base, budgets,
                                  cost_cache or os.path.join(workdir, "costs.jsonl"), executor)
    say("costing the smallest subnet")
    costs.check_reachable(budgets)  # an impossible budget fails before any training
    train, val = validation_set(data, settings, seed)
    teacher = None
    if settings.teacher:
        teacher = teacher_for(train, val.x_test, val.y_test, path=teacher_path, say=say)
        say(f"teacher: {teacher.describe()}")
    return costs, train, val, teacher


def finish(net, space: SearchSpace, train, val, data, budgets: Budgets, costs: CostModel,
           workdir: str, settings: SearchSettings, seed: int, say, tag: str,
           evolution: EvolutionSettings | None = None, teacher=None):
    """Evolutionary search in `space` on `net`'s shared weights, then the winner trained
    on its own to convergence, deployed (export -> convert -> plan) and measured in TFLM
    on the test set. Returns (EvolutionResult, FitResult, Deployment, Accuracy,
    quantisation report)."""
    from tflm_vit import pipeline
    from tflm_vit.subnet_training import train_subnet
    from tflm_vit.train import evaluate_float
    say(f"{tag}: evolutionary search")
    scored = search_subset(val, settings)
    accuracy = _Memo(lambda c: evaluate_float(net, c, scored.x_test, scored.y_test),
                     os.path.join(workdir, "val_accuracy.jsonl"), tag)
    evo = evolve(space, budgets, costs, accuracy, evolution or settings.evolution, seed,
                 lambda g, n, best: say(f"{tag}: generation {g}/{n}, best val top-1 "
                                        f"{best.accuracy if best else float('nan'):.3f}"))
    winner = evo.best.config
    say(f"{tag}: training {winner.short()} on its own, up to {settings.finetune_epochs} "
        f"epochs" + (f" within {settings.finetune_minutes:g} min"
                     if settings.finetune_minutes else ""))
    trained, training = train_subnet(net, winner, train, val, settings.finetune_epochs,
                                     settings.recipe, teacher, settings.patience,
                                     os.path.join(workdir, f"{tag}_final"), seed, say,
                                     minutes=settings.finetune_minutes)
    say(f"{tag}: deploying {winner.short()} (export, convert, plan, measure in TFLM)")
    # The plan refuses (PlanError) to exceed the SRAM budget, should the trained model's
    # arena ever differ from the shape-only one the search costed.

    def deploy(model):  # export -> convert -> plan, verified on the validation images
        return pipeline.deploy(model, winner, train.x_train[:pipeline.CALIBRATION_IMAGES],
                               verify_images=val.x_test, target=budgets.target,
                               budget=budgets.sram)
    d = deploy(trained)
    quantisation = pipeline.quantisation_loss(d, trained, val.x_test, val.y_test)
    say(f"{tag}: validation top-1 float {quantisation['float_top1']:.4f}, int8 in TFLM "
        f"{quantisation['int8_top1']:.4f}")
    quantisation["qat"] = None
    if quantisation["loss"] > QAT_THRESHOLD:
        # int8 loses too much: a few epochs quantisation-aware, kept if int8 gains
        say(f"{tag}: int8 loses {quantisation['loss'] * 100:.2f} pt: "
            f"{QAT_EPOCHS} epochs quantisation-aware")
        qat_recipe = dataclasses.replace(settings.recipe, warmup=0.0,
                                         learning_rate=settings.recipe.learning_rate / 10)
        tuned, qat_fit = train_subnet(trained, winner, train, val, QAT_EPOCHS, qat_recipe,
                                      teacher, None, os.path.join(workdir, f"{tag}_qat"),
                                      seed, say, quantisation_aware=True)
        d2 = deploy(tuned)
        q2 = pipeline.quantisation_loss(d2, tuned, val.x_test, val.y_test)
        quantisation["qat"] = {**q2, "epochs": qat_fit.epochs, "seconds": qat_fit.seconds,
                               "kept": q2["int8_top1"] > quantisation["int8_top1"]}
        say(f"{tag}: after quantisation-aware training int8 in TFLM "
            f"{q2['int8_top1']:.4f} on validation")
        if quantisation["qat"]["kept"]:
            trained, d = tuned, d2
    # The whole test set through the deployed model in TFLM; the stock model (slower in
    # the wheel's reference kernels, and not what ships) is not run.
    acc = pipeline.measure(d, trained, data.x_test, data.y_test, run_stock=False)
    return evo, training, d, acc, quantisation


def train_space(net, space: SearchSpace, train, epochs: float, seed: int, path: str,
                say, tag: str, teacher=None) -> int:
    """Trains `net` on `space`'s subnets for `epochs` epochs, or loads what an earlier
    (interrupted) run saved at `path`. Returns the steps it trains for."""
    from tflm_vit.train import TrainConfig, train_supernet
    if not epochs:
        return 0
    cfg = TrainConfig.epochs(epochs, len(train.y_train), seed=seed)
    if os.path.exists(path):
        load_weights(net, path)
        return cfg.steps
    say(f"{tag}: training the supernet {epochs:g} epochs ({cfg.steps} steps)")
    train_supernet(space, train, cfg, supernet=net, progress=False, teacher=teacher)
    save_weights(net, path)
    return cfg.steps


def run_search(base: SearchSpace, data: Dataset, budgets: Budgets, workdir: str,
               settings: SearchSettings = SearchSettings(), seed: int = 0,
               progress=None, executor=None, cost_cache: str | None = None,
               teacher_path: str | None = None) -> SearchResult:
    """The search. `executor` (search/parallel.py: Local, the default, or OnRay) runs the
    independent jobs: costing architectures, training a round's candidate spaces."""
    workdir = absolute(workdir)
    with work_folder_lock(workdir):
        return _run_search(base, data, budgets, workdir, settings, seed, progress, executor,
                           cost_cache, teacher_path)


def _run_search(base, data, budgets, workdir, settings, seed, progress, executor, cost_cache,
                teacher_path) -> SearchResult:
    say = progress or (lambda text: None)
    cost_cache = cost_cache and absolute(cost_cache)
    costs, train, val, teacher = prepare(base, data, budgets, workdir, settings, seed, say,
                                         executor, cost_cache, teacher_path)
    spaces = SpaceEvolution(base, train, search_subset(val, settings), budgets, costs,
                            os.path.join(workdir, "spaces"), settings.spaces, seed, say,
                            executor, teacher)
    chosen = spaces.run()
    space = spaces.trained_space(chosen.point)
    say(f"space chosen: {describe(base, chosen.point)}, trained up to "
        f"{costs.largest_within(budgets, space).short()}")
    net = spaces.load_net(chosen.point)
    tag = f"r{chosen.point.rank}_t{chosen.point.tokens}"
    steps = train_space(net, space, train, settings.supernet_epochs, seed,
                        os.path.join(workdir, f"{tag}_supernet.npz"), say, tag, teacher)
    evo, training, d, acc, quant = finish(net, space, train, val, data, budgets, costs,
                                          workdir, settings, seed, say, tag, teacher=teacher)
    return SearchResult(evo.best.config, {**dataclasses.asdict(chosen.point),
                                          "description": describe(base, chosen.point),
                                          "score": chosen.score},
                        evo, budgets, d, acc,
                        {"training_steps": spaces.cost["training_steps"] + steps,
                         "evaluations": spaces.cost["evaluations"] + evo.evaluations},
                        training, teacher, quant)
