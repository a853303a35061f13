"""plan_model: a model in, the same model with a checked offline plan out."""

from __future__ import annotations

import dataclasses

from tflm_vit.errors import PlanError
from tflm_vit.memory.check import check_plan
from tflm_vit.memory.offline_plan import write_plan
from tflm_vit.memory.planner import DEFAULT_TIME_LIMIT_S, Plan, plan
from tflm_vit.memory.predict import MemoryPrediction, predict_info
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
        models, the room it needs while planning), rounded as the target needs. With ops
        the memory model does not know: measured on the wheel, refused elsewhere
        (predict.UnmodelledOpsError)."""
        if self.after.unmodelled and self.after.target == "wheel":
            if self._measured is None:
                from tflm_vit import runtime
                self._measured = runtime.allocations(self.model).total
            return self._measured
        return self.after.arena_to_give

    _measured = None


def plan_model(model, budget: int | None = None, exact: bool | None = None,
               time_limit_s: float = DEFAULT_TIME_LIMIT_S,
               target=DEFAULT_TARGET) -> PlannedModel:
    """Plans `model` (path or bytes) and writes the plan into it. With `budget` (bytes of
    arena on `target`: "wheel", "cortex-m", "cortex-m-cmsis-nn"), a plan that needs more
    raises PlanError naming the budget, the planned size, the lower bound and what the
    exact planner reached. exact (planner.plan): None runs CP-SAT within time_limit_s
    only when the heuristic is above the bound, True always, False never. The plan (the
    head) is the same on every target; the arena to give TFLM differs by the tail."""
    target = get_target(target)
    budget = _budget_bytes(budget)
    data, info = load_model(model)
    before = predict_info(info, len(data), target)
    found = plan(info, time_limit_s, exact, target.kernels)
    check_plan(info, found.offsets)
    out = write_plan(data, found.offsets)
    after = predict_info(parse_model(out), len(out), target)
    if after.head != found.head:
        raise PlanError(f"internal: planned head {found.head} but TFLM would use {after.head}")
    result = PlannedModel(out, found, before, after)
    if budget is not None and result.arena_size > budget:
        raise PlanError(
            f"the model needs an arena of {result.arena_size:,} bytes on {target.name} with "
            f"the best plan found (head {after.head:,} + persistent tail {after.tail:,}; no "
            f"plan can go below {after.lower_bound:,}; {exact_summary(found)}), over the "
            f"budget of {budget:,} bytes")
    return result


def _budget_bytes(budget) -> int | None:
    """A budget in bytes: a whole number, or a size with a unit ("320KB")."""
    if budget is None:
        return None
    if isinstance(budget, str):
        from tflm_vit.units import parse_bytes
        try:
            budget = parse_bytes(budget)
        except ValueError as e:
            raise PlanError(f"arena budget: {e}") from None
    import numbers
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget <= 0:
        raise PlanError(f"arena budget must be a positive whole number of bytes or a size "
                        f"such as '320KB', got {budget!r}")
    return budget


def exact_summary(found: Plan) -> str:
    """What the exact planner did, in words, for messages."""
    e = found.exact
    if e is None:
        return "the exact planner was not run"
    if e == "not needed":
        return "the plan is at the bound, so optimal"
    if e.startswith("skipped"):
        return f"the exact planner was {e}"
    if e == "optimal":
        return "CP-SAT proved this head optimal"
    return f"CP-SAT reached no better head within its time limit ({e})"
