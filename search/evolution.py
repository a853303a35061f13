"""Evolutionary search of one space's subnets under budgets, on pymoo.

AutoFormer's evolution (population, mutation with per-layer and global probabilities,
crossover of genes from two parents of equal depth), run as pymoo's NSGA-II over two
objectives, validation error and SRAM, so one run also gives the accuracy/SRAM Pareto
front. Budgets are pymoo inequality constraints (feasible solutions dominate infeasible
ones). Every candidate is costed (search/costs.py) before it is evaluated; one that breaks
a budget is never run on data. The winner is the most accurate feasible subnet the search
evaluated.

Evaluations are memoised per architecture, so a search repeated with the same seed (after
an interruption, say) replays the same path without running any evaluation again, and
ends with the same result.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.core.crossover import Crossover
from pymoo.core.duplicate import ElementwiseDuplicateElimination
from pymoo.core.mutation import Mutation
from pymoo.core.problem import Problem
from pymoo.core.sampling import Sampling
from pymoo.core.termination import Termination, TerminateIfAny
from pymoo.optimize import minimize
from pymoo.termination.max_gen import MaximumGenerationTermination

from tflm_vit import interrupt
from tflm_vit.search.budgets import Budgets, Cost
from tflm_vit.search.costs import CostModel
from tflm_vit.config import SubnetConfig
from tflm_vit.space import SearchSpace


@dataclasses.dataclass(frozen=True)
class EvolutionSettings:
    population: int = 20  # AutoFormer: 50 (bench/search.py --full)
    generations: int = 6  # AutoFormer: 20 (max-epochs)
    layer_prob: float = 0.2  # per-layer mutation probability (heads, MLP ratio)
    global_prob: float = 0.4  # tokens, width, depth, rank mutation probability
    crossover_prob: float = 0.5  # of a mating producing crossed genes, not copies
    sample_tries: int = 50  # draws per initial member before giving up on feasibility
    max_evaluations: int | None = None  # stop at this many accuracy evaluations (then
    # `generations` is only a cap): the baselines' equal-cost budget


@dataclasses.dataclass
class Candidate:
    config: SubnetConfig
    cost: Cost
    accuracy: float | None  # validation top-1; None when a budget ruled it out
    feasible: bool

    def to_dict(self) -> dict:
        return {"config": json.loads(self.config.to_json()), "cost": self.cost.to_dict(),
                "accuracy": self.accuracy, "feasible": self.feasible}


@dataclasses.dataclass
class EvolutionResult:
    best: Candidate
    evaluated: list[Candidate]  # every distinct architecture costed, in order
    pareto: list[Candidate]  # feasible, non-dominated in (accuracy, SRAM)
    evaluations: int  # accuracy evaluations (feasible candidates run on data)


class Evaluator:
    """Cost then accuracy of configs, each memoised per architecture."""

    def __init__(self, budgets: Budgets, costs: CostModel, accuracy_fn):
        self.budgets, self.costs, self.accuracy_fn = budgets, costs, accuracy_fn
        self.seen: dict[str, Candidate] = {}

    def __call__(self, config: SubnetConfig) -> Candidate:
        key = config.to_json()
        if key not in self.seen:
            cost = self.costs.cost(config)
            feasible = self.budgets.fits(cost)
            acc = float(self.accuracy_fn(config)) if feasible else None
            self.seen[key] = Candidate(config, cost, acc, feasible)
        return self.seen[key]

    @property
    def evaluations(self) -> int:
        return sum(c.accuracy is not None for c in self.seen.values())


class _SubnetProblem(Problem):
    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        super().__init__(n_var=1, n_obj=2, n_ieq_constr=max(1, len(evaluator.budgets.given)),
                         vtype=object)

    def _evaluate(self, X, out, *args, **kwargs):
        self.evaluator.costs.costs([x[0] for x in X])  # the batch at once (in parallel)
        f, g = [], []
        for (config,) in X:
            interrupt.check()
            c = self.evaluator(config)
            f.append([1.0 - (c.accuracy if c.feasible else 0.0), c.cost.sram])
            g.append(list(self.evaluator.budgets.excess(c.cost).values()) or [-1.0])
        out["F"], out["G"] = np.array(f, float), np.array(g, float)


class _Sampling(Sampling):
    """AutoFormer's initial population: random subnets, redrawn while they break a
    budget (costing is cheap next to training; it never runs a subnet on data)."""

    def __init__(self, space, evaluator, tries):
        super().__init__()
        self.space, self.evaluator, self.tries = space, evaluator, tries

    def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
        out, batch = [], []
        for _ in range(self.tries):
            if len(out) == n_samples:
                break
            batch = [self.space.sample(random_state) for _ in range(n_samples - len(out))]
            costs = self.evaluator.costs.costs(batch)  # costed together (in parallel)
            out += [c for c, k in zip(batch, costs) if self.evaluator.budgets.fits(k)]
        out += batch[:n_samples - len(out)]  # the rest break a budget: never run on data
        return np.array([[c] for c in out], dtype=object)


class _Mutation(Mutation):
    def __init__(self, space, layer_prob, global_prob):
        super().__init__()
        self.space, self.layer_prob, self.global_prob = space, layer_prob, global_prob

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        return np.array([[self.space.mutate(x[0], random_state, self.layer_prob,
                                            self.global_prob)] for x in X], dtype=object)


class _Crossover(Crossover):
    """AutoFormer's crossover: each gene from either parent; parents of different depth
    (no gene-for-gene pairing) pass through unchanged."""

    def __init__(self, prob):
        super().__init__(2, 2, prob=prob)

    def _do(self, problem, X, *args, random_state=None, **kwargs):
        _, n_matings, _ = X.shape
        Y = np.empty_like(X)
        for k in range(n_matings):
            a, b = X[0, k, 0], X[1, k, 0]
            Y[0, k, 0], Y[1, k, 0] = cross(a, b, random_state), cross(b, a, random_state)
        return Y


def cross(a: SubnetConfig, b: SubnetConfig, rng: np.random.Generator) -> SubnetConfig:
    if a.depth != b.depth:
        return a
    pick = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
    r, p = pick((a.resolution, a.patch_size), (b.resolution, b.patch_size))
    d = pick(a.embed_dim, b.embed_dim)
    heads = [pick(x, y) for x, y in zip(a.num_heads, b.num_heads)]
    heads = [h if d % h == 0 else min(a.num_heads[i], b.num_heads[i]) for i, h in enumerate(heads)]
    if any(d % h for h in heads):
        return a
    mlp = [pick(x, y) for x, y in zip(a.mlp_ratio, b.mlp_ratio)]
    rank = pick(a.rank_ratio, b.rank_ratio)
    # the stem gene is drawn only where the parents differ in it (older searches, with
    # no stem, draw what they always drew)
    stem = pick(a.stem, b.stem) if a.stem != b.stem else a.stem
    return SubnetConfig(r, p, d, a.depth, heads, mlp, rank, stem)


class _Duplicates(ElementwiseDuplicateElimination):
    def is_equal(self, a, b):
        return a.X[0] == b.X[0]


class _EvaluationBudget(Termination):
    def __init__(self, evaluator: Evaluator, limit: int):
        super().__init__()
        self.evaluator, self.limit = evaluator, limit

    def _update(self, algorithm):
        return self.evaluator.evaluations / self.limit


def evolve(space: SearchSpace, budgets: Budgets, costs: CostModel, accuracy_fn,
           settings: EvolutionSettings = EvolutionSettings(), seed: int = 0,
           progress=None) -> EvolutionResult:
    """The search. accuracy_fn(config) -> validation top-1 of the subnet with the shared
    weights. progress(generation, generations, best) is called after each generation."""
    costs.check_reachable(budgets, space)
    evaluator = Evaluator(budgets, costs, accuracy_fn)
    algorithm = NSGA2(pop_size=settings.population,
                      sampling=_Sampling(space, evaluator, settings.sample_tries),
                      crossover=_Crossover(settings.crossover_prob),
                      mutation=_Mutation(space, settings.layer_prob, settings.global_prob),
                      eliminate_duplicates=_Duplicates())

    def callback(alg):
        if progress is not None:
            progress(alg.n_gen, settings.generations, _best(evaluator))

    termination = MaximumGenerationTermination(settings.generations)
    if settings.max_evaluations:
        termination = TerminateIfAny(termination,
                                     _EvaluationBudget(evaluator, settings.max_evaluations))
    minimize(_SubnetProblem(evaluator), algorithm, termination,
             seed=seed, callback=callback, verbose=False,
             # copies would deep-copy the supernet in accuracy_fn and detach the
             # evaluation budget from the evaluator it counts
             copy_algorithm=False, copy_termination=False)
    best = _best(evaluator)
    if best is None:  # every sample broke a budget: the floor fits, so sampling missed
        raise RuntimeError("no evaluated subnet fits the budgets")
    return EvolutionResult(best, list(evaluator.seen.values()), pareto(evaluator.seen.values()),
                           evaluator.evaluations)


def _best(evaluator: Evaluator) -> Candidate | None:
    ok = [c for c in evaluator.seen.values() if c.feasible]
    # Ties go to the smaller arena, then to the first found (dict order is evaluation order).
    return max(ok, key=lambda c: (c.accuracy, -c.cost.sram), default=None)


def pareto(candidates) -> list[Candidate]:
    """Feasible candidates no other beats on both accuracy and SRAM, by SRAM."""
    ok = sorted((c for c in candidates if c.feasible), key=lambda c: (c.cost.sram, -c.accuracy))
    front, best_acc = [], -1.0
    for c in ok:
        if c.accuracy > best_acc:
            front.append(c)
            best_acc = c.accuracy
    return front
