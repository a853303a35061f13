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
from tflm_vit.search.evolution import EvolutionResult
from tflm_vit.search.run import SearchSettings, absolute, finish, prepare, train_space
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
    same_run_as: str | None = None  # the earlier baseline whose run this one is


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


def run_baseline(method: str, base: SearchSpace, data, budgets: Budgets, workdir: str,
                 training_steps: int, evaluations: int,
                 settings: SearchSettings = SearchSettings(), seed: int = 0,
                 progress=None, executor=None, cost_cache: str | None = None,
                 teacher_path: str | None = None,
                 runs: dict | None = None) -> BaselineResult:
    """One baseline at the given search cost (the search's SpaceEvolution.cost plus its
    evolutionary search's evaluations): its supernet trains as many steps, budget-aware
    (up to its space's largest subnet that fits), and its winner trains on its own with
    the same recipe, teacher and epochs as the search's.

    `runs`, shared by the baselines of one (data, budgets, settings, seed): the finished
    runs by run_key. A baseline whose space and search are an earlier one's (AutoFormer's
    dense space is often TinyNAS's pick, or the largest space) is that run, not a second
    identical one of an hour or more: its result, with same_run_as naming the first."""
    from tflm_vit.search.lock import work_folder_lock
    say = progress or (lambda text: None)
    workdir, cost_cache = absolute(workdir), cost_cache and absolute(cost_cache)
    with work_folder_lock(workdir):
        return _run_baseline(method, base, data, budgets, workdir, training_steps,
                             evaluations, settings, seed, say, executor, cost_cache,
                             teacher_path, runs)


def _run_baseline(method, base, data, budgets, workdir, training_steps, evaluations,
                  settings, seed, say, executor, cost_cache, teacher_path,
                  runs) -> BaselineResult:
    from tflm_vit.train import SUPERNET_RECIPE
    costs, train, val, teacher = prepare(base, data, budgets, workdir, settings, seed, say,
                                         executor, cost_cache, teacher_path)
    space = choose_space(method, base, budgets, costs, settings.spaces.samples, seed)
    space = space.clipped(costs.largest_within(budgets, space))
    epochs = training_steps * SUPERNET_RECIPE.batch_size / len(train.y_train)
    if method == "random":
        evo_settings = dataclasses.replace(settings.evolution, population=evaluations,
                                           generations=1)  # one random generation
    else:
        evo_settings = dataclasses.replace(settings.evolution, max_evaluations=evaluations,
                                           generations=10 * settings.evolution.generations)
    key = run_key(space, epochs, evo_settings)
    if runs is not None and key in runs:
        first = runs[key]
        say(f"{method}: the same space and search as {first.method}: its run")
        return dataclasses.replace(first, method=method, same_run_as=first.method)
    net = seeded_supernet(base, seed)
    train_space(net, space, train, epochs, seed, os.path.join(workdir, f"{method}_supernet.npz"),
                say, method, teacher)
    evo, training, d, acc, quant = finish(net, space, train, val, data, budgets, costs,
                                          workdir, settings, seed, say, method, evo_settings,
                                          teacher)
    desc = "the whole base space" if method == "random" else _describe(base, space)
    result = BaselineResult(method, desc, evo, d, acc, training_steps, evo.evaluations,
                            training, quant)
    if runs is not None:
        runs[key] = result
    return result


def _describe(base: SearchSpace, space: SearchSpace) -> str:
    grid = token_grid(base)
    largest = max(space.token_choices, key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))
    return describe(base, Point(base.rank_ratio.index(space.rank_ratio[0]),
                                grid.index(largest)))
