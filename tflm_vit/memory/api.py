"""plan_model: a model in, the same model with a checked offline plan out."""

from __future__ import annotations

import dataclasses

from tflm_vit.errors import PlanError
from tflm_vit.memory.check import check_plan
from tflm_vit.memory.offline_plan import write_plan
from tflm_vit.memory.planner import Plan, plan_exact, plan_heuristic
from tflm_vit.memory.predict import MemoryPrediction, predict, predict_info
from tflm_vit.tflite_model import load_model, parse_model


@dataclasses.dataclass
class PlannedModel:
    model: bytes
    plan: Plan
    before: MemoryPrediction  # the model as given (TFLM's own planner, or its old plan)
    after: MemoryPrediction  # with our plan

    @property
    def arena_size(self) -> int:
        """The arena to give TFLM: what it will record (or, for tiny models, the room it
        needs while planning)."""
        return self.after.arena_size


def plan_model(model, budget: int | None = None, exact: bool = False,
               time_limit_s: float = 30.0) -> PlannedModel:
    """Plans `model` (path or bytes) and writes the plan into it. With `budget` (bytes of
    arena), a plan that needs more raises PlanError naming the budget, the planned size
    and the lower bound. exact=True uses CP-SAT (small graphs only)."""
    data, info = load_model(model)
    before = predict_info(info, len(data))
    if budget is not None and budget <= 0:
        raise PlanError(f"arena budget must be positive, got {budget}")
    plan = plan_exact(info, time_limit_s) if exact else plan_heuristic(info)
    check_plan(info, plan.offsets)
    out = write_plan(data, plan.offsets)
    after = predict_info(parse_model(out), len(out))
    if after.head != plan.head:
        raise PlanError(f"internal: planned head {plan.head} but TFLM would use {after.head}")
    if budget is not None and after.arena_size > budget:
        raise PlanError(
            f"the model needs an arena of {after.arena_size:,} bytes with the best plan found "
            f"(head {after.head:,} + persistent tail {after.tail:,}; no plan can go below "
            f"{after.lower_bound:,}), over the budget of {budget:,} bytes")
    return PlannedModel(out, plan, before, after)
