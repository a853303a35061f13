"""plan_model: a model in, the same model with a checked offline plan out."""

from __future__ import annotations

import dataclasses

from tflm_vit.errors import PlanError
from tflm_vit.memory.check import check_plan
from tflm_vit.memory.offline_plan import write_plan
from tflm_vit.memory.planner import Plan, plan_exact, plan_heuristic
from tflm_vit.memory.predict import MemoryPrediction, predict, predict_info
from tflm_vit.memory.targets import DEFAULT_TARGET, get_target
from tflm_vit.tflite_model import load_model, parse_model


@dataclasses.dataclass
class PlannedModel:
    model: bytes
    plan: Plan
    before: MemoryPrediction  # the model as given (TFLM's own planner, or its old plan)
    after: MemoryPrediction  # with our plan, on the target plan_model was given

    @property
    def arena_size(self) -> int:
        """The arena to give TFLM on the target: what it will record (or, for tiny
        models, the room it needs while planning), rounded as the target needs."""
        return self.after.arena_to_give


def plan_model(model, budget: int | None = None, exact: bool = False,
               time_limit_s: float = 30.0, target=DEFAULT_TARGET) -> PlannedModel:
    """Plans `model` (path or bytes) and writes the plan into it. With `budget` (bytes of
    arena on `target`: "wheel", "cortex-m", "cortex-m-cmsis-nn"), a plan that needs more
    raises PlanError naming the budget, the planned size and the lower bound.
    exact=True uses CP-SAT (small graphs only). The plan (the head) is the same on every
    target; the arena to give TFLM differs by the target's tail."""
    target = get_target(target)
    data, info = load_model(model)
    before = predict_info(info, len(data), target)
    if budget is not None and budget <= 0:
        raise PlanError(f"arena budget must be positive, got {budget}")
    plan = plan_exact(info, time_limit_s) if exact else plan_heuristic(info)
    check_plan(info, plan.offsets)
    out = write_plan(data, plan.offsets)
    after = predict_info(parse_model(out), len(out), target)
    if after.head != plan.head:
        raise PlanError(f"internal: planned head {plan.head} but TFLM would use {after.head}")
    result = PlannedModel(out, plan, before, after)
    if budget is not None and result.arena_size > budget:
        raise PlanError(
            f"the model needs an arena of {result.arena_size:,} bytes on {target.name} with "
            f"the best plan found (head {after.head:,} + persistent tail {after.tail:,}; no "
            f"plan can go below {after.lower_bound:,}), over the budget of {budget:,} bytes")
    return result
