"""The memory model: the arena TFLM will need for a model, without running TFLM.

head: TFLM's greedy planner reproduced on TFLM's lifetimes and scratch requests, honouring
the model's offline plan if it has one; tail: TFLM's persistent allocations in order
(tail.py); total = head + tail, which is what the wheel's recording allocator reports
and the smallest arena (16-byte aligned) the model loads in. Flash: the model file.
"""

from __future__ import annotations

import dataclasses

from tflm_vit.errors import ModelFileError
from tflm_vit.memory.bound import head_lower_bound, live_bytes_bound
from tflm_vit.memory.check import check_plan
from tflm_vit.memory.greedy import greedy_offsets, head_size
from tflm_vit.memory.lifetimes import planned_buffers
from tflm_vit.memory.offline_plan import plan_of
from tflm_vit.memory.scratch import unknown_builtins
from tflm_vit.memory.tail import (planning_need, prepare_need, tail_allocations, tail_size,
                                  unknown_ops)
from tflm_vit.memory.targets import DEFAULT_TARGET, get_target
from tflm_vit.tflite_model import ModelInfo, load_model


@dataclasses.dataclass
class OpMemory:
    index: int
    op: str
    live_bytes: int  # arena bytes in use while the op runs (shared bytes counted once)
    bound_bytes: int  # the same net of the overwrites the op may make
    scratch_bytes: int
    persistent_bytes: int  # this op's share of the tail
    weight_bytes: int  # constant inputs (flash)


@dataclasses.dataclass
class MemoryPrediction:
    head: int
    tail: int
    flash: int
    head_lower_bound: int
    planned: bool  # the model carries an offline plan
    ops: list[OpMemory]
    tail_by_kind: dict
    caveats: list[str]  # ops whose allocations are not modelled (figures may be low)
    planning_need: int = 0  # arena TFLM needs while planning (tail.planning_need)
    target: str = DEFAULT_TARGET  # the build of TFLM these figures are for (targets.py)
    prepare_need: int = 0  # arena TFLM needs while the ops prepare (tail.prepare_need)

    @property
    def total(self) -> int:
        """What TFLM's recording allocator reports (print_allocations)."""
        return self.head + self.tail

    @property
    def arena_size(self) -> int:
        """The arena to give TFLM: the recorded total, or, for models with a small head,
        the room TFLM needs while the ops prepare or while it plans, whichever is largest
        (16-byte multiple)."""
        return max(self.total, -(-self.planning_need // 16) * 16,
                   -(-self.prepare_need // 16) * 16)

    @property
    def arena_to_give(self) -> int:
        """arena_size rounded as TFLM needs on this prediction's target (targets.py).
        UnmodelledOpsError when the model has ops whose allocations the memory model does
        not know: it never hands out a figure it cannot vouch for."""
        if self.caveats:
            raise UnmodelledOpsError(self.unmodelled, self.target)
        return get_target(self.target).arena_to_give(self)

    @property
    def unmodelled(self) -> list[str]:
        """The ops whose allocations are not modelled (empty: the figures are exact)."""
        return [c.split(":")[0] for c in self.caveats]

    @property
    def bound_op(self) -> int:
        """The index of the op where the head bound is reached (the first, on a tie);
        -1 without ops."""
        return max(self.ops, key=lambda op: op.bound_bytes).index if self.ops else -1

    @property
    def lower_bound(self) -> int:
        """Bound on the whole arena: the head bound plus the (plan-independent) tail."""
        return self.head_lower_bound + self.tail


class UnmodelledOpsError(ModelFileError):
    """The arena of a model with ops the memory model does not know was asked for."""

    def __init__(self, ops: list[str], target: str):
        self.ops, self.target = list(ops), target
        super().__init__(
            f"the memory model does not know the persistent allocations of "
            f"{', '.join(ops)} on {target}, so it gives no arena for this model there "
            "(on the wheel, `tflm-vit analyze` and `plan` measure it instead)")


def predict(model, target=DEFAULT_TARGET) -> MemoryPrediction:
    """Prediction for a model (path or bytes) on a target (targets.TARGETS: "wheel",
    "cortex-m", "cortex-m-cmsis-nn"); its offline plan is checked first."""
    data, info = load_model(model)
    return predict_info(info, len(data), target)


def _check_modelled(info: ModelInfo) -> None:
    """ModelFileError for a model the memory model does not cover: more than one
    subgraph, float or int16 activations (other kernels, other allocations), or one TFLM
    aborts on (aborts.py). It is exact or refuses, it never guesses. (Int8 models may
    hold a float DEQUANTIZE of a constant inside; those ops are modelled.)"""
    from tflm_vit.aborts import check_loads
    if len(info.model.subgraphs) != 1:
        raise ModelFileError(f"the model has {len(info.model.subgraphs)} subgraphs; the "
                             "memory model covers single-subgraph models (no control flow)")
    for i, t in enumerate(info.tensors):
        if t.dtype == "INT16" and not t.is_constant:
            raise ModelFileError(f"tensor {i} '{t.name}' holds int16 activations; the memory "
                                 "model covers int8 models (16x8 kernels keep other data)")
    check_loads(info)
    for t in info.inputs + info.outputs:
        if info.tensors[t].dtype != "INT8":
            kind = "input" if t in info.inputs else "output"
            raise ModelFileError(
                f"the memory model covers int8 models; the graph {kind} tensor {t} "
                f"'{info.tensors[t].name}' is {info.tensors[t].dtype} (export with "
                "`tflm-vit export` for an int8 model)")


def predict_info(info: ModelInfo, flash: int, target=DEFAULT_TARGET) -> MemoryPrediction:
    target = get_target(target)
    _check_modelled(info)
    offsets = plan_of(info)
    if offsets is not None:
        check_plan(info, offsets)
    buffers = planned_buffers(info, offsets, target.kernels)
    placed = greedy_offsets(buffers)
    head = head_size(buffers, placed)
    allocations = tail_allocations(info, target)
    by_kind: dict[str, int] = {}
    per_op_tail = [0] * len(info.ops)
    for a in allocations:
        by_kind[a.what] = by_kind.get(a.what, 0) + a.size
        if a.op >= 0:
            per_op_tail[a.op] += a.size
    bound = live_bytes_bound(info, target.kernels)
    ops = []
    for op in info.ops:
        s = op.index + 1
        ops.append(OpMemory(
            op.index, op.name,
            _occupied([(o, o + b.size) for o, b in zip(placed, buffers)
                       if b.first <= s <= b.last]),
            bound[op.index],
            sum(b.size for b in buffers if b.op == op.index),
            per_op_tail[op.index],
            sum(info.tensors[t].nbytes for t in op.inputs
                if t >= 0 and info.tensors[t].is_constant)))
    caveats = [f"{name}: allocations not modelled" for name in
               sorted(set(unknown_ops(info)) | set(unknown_builtins(info)))]
    return MemoryPrediction(head, tail_size(allocations), flash, head_lower_bound(info, target.kernels),
                            offsets is not None, ops, by_kind, caveats,
                            planning_need(info, allocations, len(buffers), target),
                            target.name, prepare_need(info, allocations, target))


def _occupied(ranges: list[tuple[int, int]]) -> int:
    """Length of the union of byte ranges."""
    total, end = 0, -1
    for a, b in sorted(ranges):
        if b > end:
            total += b - max(a, end)
            end = b
    return total
