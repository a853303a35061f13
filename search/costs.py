"""CostModel: the measured cost (SRAM, flash, latency, MACs) of any subnet of a space.

A subnet's cost depends on its architecture, not on its weights' values, so it is measured
once per architecture on a shape-only supernet through the same pipeline a deployment
takes: export -> convert -> plan for the target. The figures are then the deployed
model's own, and tests hold the cost model to the deployed trained model. The shape-only
weights are seeded noise in *every* variable: freshly initialised weights are not enough,
because the TFLite converter shares identical constants (the zero biases, the unit
LayerNorm gammas) and drops no-op ADDs, which understated flash by 15 % and the arena by
256 bytes on the smallest default subnet.

Measurements are cached per architecture, in memory and (with `cache_path`) in a JSON-lines
file, so a resumed or repeated search measures nothing twice.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from tflm_vit.search.budgets import Budgets, Cost, check_reachable
from tflm_vit.search.jsonlines import JsonLines
from tflm_vit.config import SubnetConfig
from tflm_vit.space import SearchSpace


def config_key(config: SubnetConfig, space: SearchSpace) -> str:
    """Architecture identity: the config plus what it is built for (classes, channels)."""
    return json.dumps({"config": json.loads(config.to_json()),
                       "classes": space.num_classes, "channels": space.in_channels},
                      sort_keys=True)


_SHAPE_NETS: dict[str, object] = {}  # per process (a Ray worker builds its own once)


def shape_net(space: SearchSpace):
    """The shape-only supernet of `space`: seeded noise in every variable, so no two
    constants are alike and none is a no-op (the same on every process)."""
    key = space.to_json()
    if key not in _SHAPE_NETS:
        from tflm_vit.supernet import ViTSupernet
        net = ViTSupernet(space)
        fill_with_noise(net.variables)
        _SHAPE_NETS[key] = net
    return _SHAPE_NETS[key]


def fill_with_noise(variables, positive=("gamma",)) -> None:
    """Seeded noise in every variable (around 1 in those whose path ends with one of
    `positive`: scales, variances), so that no two constants are alike and none is a
    no-op, as trained weights are: the figures of a shape-only model are then the
    deployed one's."""
    rng = np.random.default_rng(0)
    for v in variables:
        noise = rng.normal(0.0, 0.05, v.shape).astype(np.float32)
        v.assign(noise + (1.0 if v.path.endswith(positive) else 0.0))


def measure_job(space_json: str, config_json: str, target: str, cpu: str) -> dict:
    """One architecture's cost, as a job a worker runs (plain arguments and result)."""
    space = SearchSpace.from_dict(json.loads(space_json))
    return measure(shape_net(space), SubnetConfig.from_json(config_json), target,
                   cpu).to_dict()


# What a cached cost was measured with: rows of another version are measured again (2:
# our ops' options became FlexBuffers maps, about 180 bytes of flash more per op).
COST_VERSION = 2


class CostModel:
    def __init__(self, space: SearchSpace, target: str = "cortex-m", cpu: str = "cortex-m7",
                 cache_path: str | None = None, executor=None):
        from tflm_vit.search.parallel import Local
        self.space, self.target, self.cpu, self.cache_path = space, target, cpu, cache_path
        self.executor = executor or Local()
        # key -> Cost.to_dict(), of this target, CPU and cost version
        self._cache = JsonLines(cache_path, f"{target} {cpu} v{COST_VERSION}")
        self.measured = 0  # architectures exported by this instance (cache misses)

    @classmethod
    def for_budgets(cls, space: SearchSpace, budgets: Budgets, cache_path=None,
                    executor=None):
        return cls(space, budgets.target, budgets.cpu, cache_path, executor)

    def cost(self, config: SubnetConfig) -> Cost:
        return self.costs([config])[0]

    def costs(self, configs: list[SubnetConfig]) -> list[Cost]:
        """Costs of a batch; the architectures not yet measured are measured on the
        executor (in parallel on Ray), each once."""
        keys = [config_key(c, self.space) for c in configs]
        todo = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if todo:
            first = {k: c for k, c in zip(keys, configs)}
            jobs = [(self.space.to_json(), first[k].to_json(), self.target, self.cpu)
                    for k in todo]
            for k, cost in zip(todo, self.executor.map(measure_job, jobs)):
                self._cache.add(k, cost)
                self.measured += 1
        return [Cost(**self._cache[k]) for k in keys]

    def floor(self, space: SearchSpace | None = None) -> tuple[Cost, SubnetConfig]:
        """The least of each figure over the smallest subnet of `space` (default: the cost
        model's, or a subspace of it) at every rank ratio (low rank trades flash for an
        extra per-token buffer, so SRAM need not fall with it), and the config that
        reaches the least SRAM."""
        space = space or self.space
        small = space.smallest()
        configs = [dataclasses.replace(small, rank_ratio=r) for r in space.rank_ratio]
        costs = self.costs(configs)
        best = min(range(len(costs)), key=lambda i: costs[i].sram)
        return Cost(*(min(getattr(c, f) for c in costs)
                      for f in ("sram", "flash", "latency", "macs"))), configs[best]

    def largest_within(self, budgets: Budgets, space: SearchSpace) -> SubnetConfig:
        """The largest subnet of `space` that fits the budgets, found by shrinking the
        largest one notch at a time: each step measures every one-notch shrink (in one
        batch) and, among those that lower the worst budget overrun, takes the dimension
        furthest up its choices (so dimensions shrink together), ties to the cheapest to
        give up (stem, MLP ratio, depth, width, tokens). What a budget-aware supernet trains as its
        largest, so no training time goes to subnets the board cannot run. BudgetError
        when even the smallest breaks a budget."""
        self.check_reachable(budgets, space)
        config = space.largest()

        def overrun(c: Cost) -> float:
            return max(budgets.excess(c).values(), default=0.0)
        cost = self.cost(config)
        while not budgets.fits(cost):
            options = [(dim, space.shrink(config, dim)) for dim in space.SHRINKABLE]
            options = [(i, dim, c) for i, (dim, c) in enumerate(options) if c is not None]
            if not options:
                break
            measured = self.costs([c for _, _, c in options])
            now = overrun(cost)
            (i, dim, config), cost = min(
                zip(options, measured),
                key=lambda oc: (overrun(oc[1]) >= now, -space.position(config, oc[0][1]),
                                oc[0][0]))
        if not budgets.fits(cost):  # the floor fits at another rank ratio
            config = self.floor(space)[1]
        return config

    def check_reachable(self, budgets: Budgets, space: SearchSpace | None = None) -> None:
        floor, config = self.floor(space)
        check_reachable(budgets, floor, f"the smallest subnet ({config.short()})")


def shape_only_model(net, config: SubnetConfig, target: str, **convert_options):
    """One architecture through export -> convert (unverified: the weights are not the
    deployed ones, and verification does not change sizes) -> plan on `target`, on the
    shape-only `net`: the PlannedModel, whose sizes are the deployed model's."""
    from tflm_vit import pipeline
    calibration = np.random.default_rng(0).uniform(
        -1, 1, (2, config.resolution, config.resolution, net.space.in_channels))
    stock = pipeline.export(net, config, calibration.astype(np.float32))
    return pipeline.convert_and_plan(stock, verify=False, target=target,
                                     **convert_options)[1]


def measure(net, config: SubnetConfig, target: str, cpu: str) -> Cost:
    """One architecture's cost, from its shape-only model."""
    from tflm_vit import latency
    planned = shape_only_model(net, config, target)
    lat = latency.predict_latency(planned.model, cpu)
    return Cost(planned.arena_size, len(planned.model), lat.instructions, lat.macs)
