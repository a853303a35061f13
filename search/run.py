"""The search, end to end: MCUFormer's space evolution picks the (rank, tokens) space,
the chosen space's supernet is trained on (the paper trains the evolved space's supernet
in full; the evolution's rounds only rank spaces), the evolutionary search picks the
subnet within the budgets, the winner is fine-tuned,
then deployed through the library's pipeline (export -> convert -> plan) and measured in
TFLM on the test set, which nothing before this last step looks at.

State lives in the work folder: the space evolution's log and weights, the cost cache,
the validation accuracies, the fine-tuned weights. An interrupted search run again with
the same arguments resumes and, being seeded and deterministic, ends with the same result.
"""

from __future__ import annotations

import dataclasses
import json
import os


from tflm_vit.search.budgets import Budgets
from tflm_vit.search.costs import CostModel
from tflm_vit.search.jsonlines import JsonLines
from tflm_vit.search.evolution import EvolutionResult, EvolutionSettings, evolve
from tflm_vit.search.space_evolution import (EvolutionOfSpaceSettings, SpaceEvolution,
                                             candidate_space, describe, load_weights,
                                             save_weights)
from tflm_vit.config import SubnetConfig
from tflm_vit.data import Dataset, validation_split
from tflm_vit.space import SearchSpace


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    spaces: EvolutionOfSpaceSettings = EvolutionOfSpaceSettings()
    evolution: EvolutionSettings = EvolutionSettings()
    supernet_steps: int = 2000  # the chosen space's supernet, after the space evolution
    finetune_steps: int = 300
    val_fraction: float = 0.1  # of the training set, held out to pick by
    val_images: int = 2000  # validation images each subnet is scored on (at most)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def quick(cls) -> "SearchSettings":
        """The README's main job: minutes on two CPU cores."""
        return cls(EvolutionOfSpaceSettings(initial_points=2, rounds=2, steps_per_round=150,
                                            samples=4),
                   EvolutionSettings(population=8, generations=3), supernet_steps=150,
                   finetune_steps=100, val_images=500)


@dataclasses.dataclass
class SearchResult:
    config: SubnetConfig
    space_point: dict
    evolution: EvolutionResult
    budgets: Budgets
    deployment: object  # pipeline.Deployment
    accuracy: object  # pipeline.Accuracy on the test set
    search_cost: dict  # supernet training steps and subnets evaluated, in all

    @property
    def val_accuracy(self) -> float:
        """The winner's validation top-1 with the shared weights, before fine-tuning."""
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
    train, val = validation_split(data, settings.val_fraction, seed)
    n = min(settings.val_images, len(val.y_test))
    return train, dataclasses.replace(val, x_test=val.x_test[:n], y_test=val.y_test[:n])


def prepare(base: SearchSpace, data: Dataset, budgets: Budgets, workdir: str,
            settings: SearchSettings, seed: int, say, executor=None,
            cost_cache: str | None = None):
    """What every method starts from: determinism, the cost model (checked against the
    budgets before any training; its cache `cost_cache`, default in the work folder, can
    be shared by searches on one target: a cost depends only on the architecture) and the
    train / validation split."""
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()  # a resumed search ends the same
    os.makedirs(workdir, exist_ok=True)
    costs = CostModel.for_budgets(base, budgets,
                                  cost_cache or os.path.join(workdir, "costs.jsonl"), executor)
    say("costing the smallest subnet")
    costs.check_reachable(budgets)  # an impossible budget fails before any training
    train, val = validation_set(data, settings, seed)
    return costs, train, val


def finish(net, space: SearchSpace, train, val, data, budgets: Budgets, costs: CostModel,
           workdir: str, settings: SearchSettings, seed: int, say, tag: str,
           evolution: EvolutionSettings | None = None):
    """Evolutionary search in `space` on `net`'s shared weights, then fine-tune the
    winner, deploy it (export -> convert -> plan) and measure it in TFLM on the test set.
    Returns (EvolutionResult, Deployment, Accuracy)."""
    from tflm_vit import pipeline
    from tflm_vit.train import TrainConfig, evaluate_float, train_supernet
    say(f"{tag}: evolutionary search")
    accuracy = _Memo(lambda c: evaluate_float(net, c, val.x_test, val.y_test),
                     os.path.join(workdir, "val_accuracy.jsonl"), tag)
    evo = evolve(space, budgets, costs, accuracy, evolution or settings.evolution, seed,
                 lambda g, n, best: say(f"{tag}: generation {g}/{n}, best val top-1 "
                                        f"{best.accuracy if best else float('nan'):.3f}"))
    winner = evo.best.config
    tuned = os.path.join(workdir, f"{tag}_finetuned.npz")
    if os.path.exists(tuned):
        load_weights(net, tuned)
    elif settings.finetune_steps:
        say(f"{tag}: fine-tuning {winner.short()}")
        train_supernet(space, train, TrainConfig(steps=settings.finetune_steps, seed=seed,
                                                 learning_rate=1e-3),
                       supernet=net, progress=False, only=winner)
        save_weights(net, tuned)
    say(f"{tag}: deploying {winner.short()} (export, convert, plan, measure in TFLM)")
    # The plan refuses (PlanError) to exceed the SRAM budget, should the trained model's
    # arena ever differ from the shape-only one the search costed.
    d = pipeline.deploy(net, winner, train.x_train[:100], verify_images=val.x_test,
                        target=budgets.target, budget=budgets.sram)
    # The whole test set through the deployed model in TFLM; the stock model (slower in
    # the wheel's reference kernels, and not what ships) is not run.
    acc = pipeline.measure(d, net, data.x_test, data.y_test, run_stock=False)
    return evo, d, acc


def train_space(net, space: SearchSpace, train, steps: int, seed: int, path: str,
                settings: SearchSettings, say, tag: str) -> None:
    """Trains `net` on `space`'s subnets for `steps` steps, or loads what an earlier
    (interrupted) run saved at `path`."""
    from tflm_vit.train import TrainConfig, train_supernet
    if os.path.exists(path):
        load_weights(net, path)
        return
    if steps:
        say(f"{tag}: training the supernet {steps} steps")
        train_supernet(space, train, TrainConfig(steps=steps, seed=seed,
                                                 batch_size=settings.spaces.batch_size),
                       supernet=net, progress=False)
    save_weights(net, path)


def run_search(base: SearchSpace, data: Dataset, budgets: Budgets, workdir: str,
               settings: SearchSettings = SearchSettings(), seed: int = 0,
               progress=None, executor=None, cost_cache: str | None = None) -> SearchResult:
    """The search. `executor` (search/parallel.py: Local, the default, or OnRay) runs the
    independent jobs: costing architectures, training a round's candidate spaces."""
    say = progress or (lambda text: None)
    workdir, cost_cache = absolute(workdir), cost_cache and absolute(cost_cache)
    costs, train, val = prepare(base, data, budgets, workdir, settings, seed, say, executor,
                                cost_cache)
    spaces = SpaceEvolution(base, train, val, budgets, costs, os.path.join(workdir, "spaces"),
                            settings.spaces, seed, say, executor)
    chosen = spaces.run()
    space = candidate_space(base, chosen.point)
    say(f"space chosen: {describe(base, chosen.point)}")
    net = spaces.load_net(chosen.point)
    tag = f"r{chosen.point.rank}_t{chosen.point.tokens}"
    train_space(net, space, train, settings.supernet_steps, seed,
                os.path.join(workdir, f"{tag}_supernet.npz"), settings, say, tag)
    evo, d, acc = finish(net, space, train, val, data, budgets, costs, workdir, settings,
                         seed, say, tag)
    return SearchResult(evo.best.config, {**dataclasses.asdict(chosen.point),
                                          "description": describe(base, chosen.point),
                                          "score": chosen.score},
                        evo, budgets, d, acc,
                        {"training_steps": spaces.cost["training_steps"]
                         + settings.supernet_steps,
                         "evaluations": spaces.cost["evaluations"] + evo.evaluations})
