"""The baselines MCUFormer's search is held to, each at the search's own cost: a supernet
trained for as many steps as the space evolution trained in all, and as many subnets
evaluated on the validation split as the space evolution and the evolutionary search
evaluated together. Each ends as the search does (search/run.py `finish`): the winner is
fine-tuned, deployed and measured in TFLM.

- random: one supernet over the whole base space (every knob), random subnets that fit
  the budgets, the best on validation.
- autoformer: AutoFormer's search without the memory knobs: dense layers (rank 1) and a
  fixed token count (the most tokens at which a dense subnet still fits the budgets, so
  it can compete at all), evolutionary search in that space.
- tinynas: TinyNAS's space selection: of the (rank, tokens) spaces, the one whose
  sampled subnets that fit the budgets have the most MACs on average (no training to
  choose), then evolutionary search in it.
- largest_space: the space with the largest rank and token choices, evolutionary search.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tflm_vit.errors import BudgetError
from tflm_vit.search.budgets import Budgets
from tflm_vit.search.costs import CostModel
from tflm_vit.search.evolution import EvolutionResult, EvolutionSettings
from tflm_vit.search.run import (SearchSettings, absolute, finish, prepare, train_space,
                                 validation_set)
from tflm_vit.search.space_evolution import Point, candidate_space, describe, token_grid
from tflm_vit.space import SearchSpace
from tflm_vit.supernet.model import seeded_supernet

METHODS = ("random", "autoformer", "tinynas", "largest_space")


@dataclasses.dataclass
class BaselineResult:
    method: str
    space: str
    evolution: EvolutionResult
    deployment: object
    accuracy: object
    training_steps: int
    evaluations: int
    training: object = None  # fit.FitResult of the winner's own training
    quantisation: dict | None = None
    key: str = ""  # run_key: what decided this run


@dataclasses.dataclass(frozen=True)
class BaselinePlan:
    """What a baseline runs, decided before any training: its space (clipped to its
    largest subnet that fits), its supernet's epochs, its search's settings, and their
    run_key."""
    space: SearchSpace
    epochs: float
    evolution: EvolutionSettings
    key: str


def run_key(space: SearchSpace, epochs: float, evolution) -> str:
    """What decides a baseline's run once its space is chosen (with the base space, data,
    budgets, settings and seed, which one benchmark cell shares): two baselines with the
    same key train the same supernet and search it the same way, seeded and deterministic,
    so they end with the same model (bit for bit, unless a time limit ends the final
    training after a different number of epochs)."""
    import json
    return json.dumps([space.to_dict(), round(epochs, 9), dataclasses.asdict(evolution)],
                      sort_keys=True)


def _fits_somewhere(space: SearchSpace, budgets: Budgets, costs: CostModel) -> bool:
    try:
        costs.check_reachable(budgets, space)
        return True
    except BudgetError:
        return False


def choose_space(method: str, base: SearchSpace, budgets: Budgets, costs: CostModel,
                 samples: int, seed: int) -> SearchSpace:
    """The space a baseline searches; BudgetError when nothing in it can fit."""
    grid = token_grid(base)
    if method == "random":
        return base
    if method == "largest_space":
        space = candidate_space(base, Point(len(base.rank_ratio) - 1, len(grid) - 1))
        costs.check_reachable(budgets, space)  # before any training, as for the others
        return space
    if method == "autoformer":
        if 1.0 not in base.rank_ratio:
            raise BudgetError("autoformer baseline: the base space has no dense (rank 1) choice")
        dense = base.rank_ratio.index(1.0)
        for t in reversed(range(len(grid))):
            space = candidate_space(base, Point(dense, t))
            if _fits_somewhere(space, budgets, costs):
                return space
        raise BudgetError(f"autoformer baseline: no dense subnet fits {budgets.describe()}")
    if method == "tinynas":
        points = [Point(r, t) for r in range(len(base.rank_ratio)) for t in range(len(grid))]
        spaces = [candidate_space(base, p) for p in points]
        drawn = []
        for p, space in zip(points, spaces):
            rng = np.random.default_rng([seed, p.rank, p.tokens])
            drawn.append([space.sample(rng) for _ in range(samples)])
        measured = costs.costs([c for cs in drawn for c in cs])  # one batch, in parallel
        best, best_macs = None, -1.0
        for i, space in enumerate(spaces):
            fitting = [c for c in measured[i * samples:(i + 1) * samples] if budgets.fits(c)]
            macs = float(np.mean([c.macs for c in fitting])) if fitting else -1.0
            if macs > best_macs:
                best, best_macs = space, macs
        if best_macs < 0:
            raise BudgetError(f"tinynas baseline: no sampled subnet fits {budgets.describe()}")
        return best
    raise ValueError(f"unknown baseline {method!r}; choose one of {', '.join(METHODS)}")


def plan_baseline(method: str, base: SearchSpace, budgets: Budgets, costs: CostModel,
         training_steps: int, evaluations: int, train_images: int,
         settings: SearchSettings, seed: int) -> BaselinePlan:
    """`method`'s run at the given search cost, before any training (BudgetError when
    nothing of its space fits)."""
    from tflm_vit.train import SUPERNET_RECIPE
    space = choose_space(method, base, budgets, costs, settings.spaces.samples, seed)
    space = space.clipped(costs.largest_within(budgets, space))
    epochs = training_steps * SUPERNET_RECIPE.batch_size / train_images
    if method == "random":
        evo = dataclasses.replace(settings.evolution, population=evaluations,
                                  generations=1)  # one random generation
    else:
        evo = dataclasses.replace(settings.evolution, max_evaluations=evaluations,
                                  generations=10 * settings.evolution.generations)
    return BaselinePlan(space, epochs, evo, run_key(space, epochs, evo))


def baseline_key(method: str, base: SearchSpace, data, budgets: Budgets,
                 training_steps: int, evaluations: int, cost_cache: str,
                 settings: SearchSettings = SearchSettings(), seed: int = 0,
                 executor=None) -> str:
    """The run_key of `method`'s run, with no training (only architectures costed, into
    `cost_cache`): a benchmark runs no second baseline whose key an earlier one's holds
    (AutoFormer's dense space is often TinyNAS's pick, or the largest space): seeded and
    deterministic, it would end with the same model after an hour or more."""
    costs = CostModel.for_budgets(base, budgets, absolute(cost_cache), executor)
    train, _ = validation_set(data, settings, seed)
    return plan_baseline(method, base, budgets, costs, training_steps, evaluations,
                         len(train.y_train), settings, seed).key


def run_baseline(method: str, base: SearchSpace, data, budgets: Budgets, workdir: str,
                 training_steps: int, evaluations: int,
                 settings: SearchSettings = SearchSettings(), seed: int = 0,
                 progress=None, executor=None, cost_cache: str | None = None,
                 teacher_path: str | None = None) -> BaselineResult:
    """One baseline at the given search cost (the search's SpaceEvolution.cost plus its
    evolutionary search's evaluations): its supernet trains as many steps, budget-aware
    (up to its space's largest subnet that fits), and its winner trains on its own with
    the same recipe, teacher and epochs as the search's."""
    from tflm_vit.search.lock import work_folder_lock
    say = progress or (lambda text: None)
    workdir, cost_cache = absolute(workdir), cost_cache and absolute(cost_cache)
    with work_folder_lock(workdir):
        return _run_baseline(method, base, data, budgets, workdir, training_steps,
                             evaluations, settings, seed, say, executor, cost_cache,
                             teacher_path)


def _run_baseline(method, base, data, budgets, workdir, training_steps, evaluations,
                  settings, seed, say, executor, cost_cache, teacher_path) -> BaselineResult:
    costs, train, val, teacher = prepare(base, data, budgets, workdir, settings, seed, say,
                                         executor, cost_cache, teacher_path)
    p = plan_baseline(method, base, budgets, costs, training_steps, evaluations,
                      len(train.y_train), settings, seed)
    net = seeded_supernet(base, seed)
    train_space(net, p.space, train, p.epochs, seed,
                os.path.join(workdir, f"{method}_supernet.npz"), say, method, teacher)
    evo, training, d, acc, quant = finish(net, p.space, train, val, data, budgets, costs,
                                          workdir, settings, seed, say, method, p.evolution,
                                          teacher)
    desc = "the whole base space" if method == "random" else _describe(base, p.space)
    return BaselineResult(method, desc, evo, d, acc, training_steps, evo.evaluations,
                          training, quant, p.key)


def _describe(base: SearchSpace, space: SearchSpace) -> str:
    grid = token_grid(base)
    largest = max(space.token_choices, key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))
    return describe(base, Point(base.rank_ratio.index(space.rank_ratio[0]),
                                grid.index(largest)))
