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

import json
import os

import numpy as np

from tflm_vit.search.budgets import Budgets, Cost, check_reachable
from tflm_vit.config import SubnetConfig
from tflm_vit.space import SearchSpace


def config_key(config: SubnetConfig, space: SearchSpace) -> str:
    """Architecture identity: the config plus what it is built for (classes, channels)."""
    return json.dumps({"config": json.loads(config.to_json()),
                       "classes": space.num_classes, "channels": space.in_channels},
                      sort_keys=True)


class CostModel:
    def __init__(self, space: SearchSpace, target: str = "cortex-m", cpu: str = "cortex-m7",
                 cache_path: str | None = None):
        self.space, self.target, self.cpu, self.cache_path = space, target, cpu, cache_path
        self._net = None
        self._cache: dict[str, Cost] = {}
        self.measured = 0  # architectures exported by this instance (cache misses)
        if cache_path and os.path.exists(cache_path):
            with open(cache_path) as f:
                for line in f:
                    row = json.loads(line)
                    if (row["target"], row["cpu"]) == (target, cpu):
                        self._cache[row["key"]] = Cost(**row["cost"])

    @classmethod
    def for_budgets(cls, space: SearchSpace, budgets: Budgets, cache_path=None):
        return cls(space, budgets.target, budgets.cpu, cache_path)

    def _shape_net(self):
        if self._net is None:
            from tflm_vit.supernet import ViTSupernet
            self._net = ViTSupernet(self.space)
            rng = np.random.default_rng(0)
            for v in self._net.variables:  # no two constants alike, none a no-op
                noise = rng.normal(0.0, 0.05, v.shape).astype(np.float32)
                v.assign(noise + (1.0 if v.path.endswith("gamma") else 0.0))
        return self._net

    def cost(self, config: SubnetConfig) -> Cost:
        key = config_key(config, self.space)
        if key not in self._cache:
            self._cache[key] = measure(self._shape_net(), config, self.target, self.cpu)
            self.measured += 1
            if self.cache_path:
                with open(self.cache_path, "a") as f:
                    f.write(json.dumps({"key": key, "target": self.target, "cpu": self.cpu,
                                        "cost": self._cache[key].to_dict()}) + "\n")
        return self._cache[key]

    def floor(self, space: SearchSpace | None = None) -> tuple[Cost, SubnetConfig]:
        """The least of each figure over the smallest subnet of `space` (default: the cost
        model's, or a subspace of it) at every rank ratio (low rank trades flash for an
        extra per-token buffer, so SRAM need not fall with it), and the config that
        reaches the least SRAM."""
        space = space or self.space
        small = space.smallest()
        configs = [SubnetConfig.from_dict({**json.loads(small.to_json()), "rank_ratio": r})
                   for r in space.rank_ratio]
        costs = [self.cost(c) for c in configs]
        best = min(range(len(costs)), key=lambda i: costs[i].sram)
        return Cost(*(min(getattr(c, f) for c in costs)
                      for f in ("sram", "flash", "latency", "macs"))), configs[best]

    def check_reachable(self, budgets: Budgets, space: SearchSpace | None = None) -> None:
        floor, config = self.floor(space)
        check_reachable(budgets, floor, f"the smallest subnet ({config.short()})")


def measure(net, config: SubnetConfig, target: str, cpu: str) -> Cost:
    """One architecture through export -> convert (unverified: the weights are not the
    deployed ones, and verification does not change sizes) -> plan on `target`."""
    from tflm_vit import latency, pipeline
    calibration = np.random.default_rng(0).uniform(
        -1, 1, (2, config.resolution, config.resolution, net.space.in_channels))
    stock = pipeline.export(net, config, calibration.astype(np.float32))
    _, planned = pipeline.convert_and_plan(stock, verify=False, target=target)
    lat = latency.predict_latency(planned.model, cpu)
    return Cost(planned.arena_size, len(planned.model), lat.instructions, lat.macs)
