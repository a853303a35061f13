"""Arena planning with token overwriting.

The plan places every tensor TFLM allocates at a byte offset. An op's output may start
where one of its inputs starts when the op declares that safe (aliasing.py) and the input
is read by no later op: the two then form one chain that moves through the graph at one
offset (a ViT's token tensor goes patch embedding -> LayerNorm -> ... without moving).
Chains and the remaining buffers are placed largest first at the lowest offset where
they clash with nothing alive at the same time (scratch buffers are placed too, to keep
room for them, though TFLM itself places scratch online around the fixed tensors).

`plan_exact` solves the same placement to optimality with CP-SAT for small graphs, to
show how far the heuristic is from the optimum.
"""

from __future__ import annotations

import dataclasses

from tflm_vit.errors import PlanError
from tflm_vit.memory.aliasing import handoffs
from tflm_vit.memory.greedy import ONLINE, greedy_offsets, head_size
from tflm_vit.memory.lifetimes import ALIGN, PlannedBuffer, planned_buffers, tensor_scopes
from tflm_vit.tflite_model import ModelInfo


@dataclasses.dataclass
class Plan:
    """Offsets per tensor (-1 for tensors TFLM does not plan), the head TFLM will use
    with them (scratch placed online, as TFLM does), and the chains that share bytes."""

    offsets: list[int]
    head: int
    chains: list[list[int]]  # tensor indices, each chain at one offset
    method: str


def choose_aliases(info: ModelInfo) -> dict[int, int]:
    """output tensor -> the input tensor whose bytes it takes over."""
    scopes = tensor_scopes(info)
    taken: set[int] = set()
    alias: dict[int, int] = {}
    for op in info.ops:
        for src, dst in handoffs(info, op, scopes):
            if src in taken:
                continue
            if info.tensors[src].nbytes == 0 or src in info.outputs:
                continue
            alias[dst] = src
            taken.add(src)
            break
    return alias


def _groups(buffers: list[PlannedBuffer], alias: dict[int, int]) -> list[list[int]]:
    """Buffer indices grouped into chains (an output with the input it overwrites)."""
    def find(t):
        while t in alias:
            t = alias[t]
        return t

    groups: dict[int, list[int]] = {}
    for i, b in enumerate(buffers):
        key = ("t", find(b.tensor)) if b.tensor >= 0 else ("s", i)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _place(buffers: list[PlannedBuffer], groups: list[list[int]]) -> list[int]:
    order = sorted(range(len(groups)), key=lambda g: (
        -max(buffers[i].size for i in groups[g]),
        -sum(buffers[i].last - buffers[i].first + 1 for i in groups[g])))
    offsets = [0] * len(buffers)
    placed: list[int] = []
    for g in order:
        members = groups[g]
        clashes = [(m, p) for m in members for p in placed if buffers[m].overlaps_in_time(buffers[p])]
        candidates = sorted({0} | {offsets[p] + buffers[p].size for _, p in clashes})
        for off in candidates:
            if all(off + buffers[m].size <= offsets[p] or offsets[p] + buffers[p].size <= off
                   for m, p in clashes):
                break
        for m in members:
            offsets[m] = off
        placed.extend(members)
    return offsets


def _finish(info: ModelInfo, buffers, offsets, groups, method) -> Plan:
    plan = [ONLINE] * len(info.tensors)
    for b, o in zip(buffers, offsets):
        if b.tensor >= 0:
            plan[b.tensor] = o
    chains = [[buffers[i].tensor for i in g] for g in groups
              if len(g) > 1 and buffers[g[0]].tensor >= 0]
    return Plan(plan, tflm_head(info, plan), chains, method)


def tflm_head(info: ModelInfo, offsets: list[int] | None) -> int:
    """The head TFLM computes for the model with this offline plan (None: no plan)."""
    bufs = planned_buffers(info, offsets)
    return head_size(bufs, greedy_offsets(bufs))


def _check_plannable(info: ModelInfo) -> None:
    for t in info.tensors:
        if t.is_dynamic and not t.is_constant:
            raise PlanError(f"tensor {t.index} '{t.name}' has a dynamic shape "
                            f"{t.shape_signature}; only static models can be planned")
    if len(info.model.subgraphs) != 1:
        raise PlanError(f"the model has {len(info.model.subgraphs)} subgraphs; the planner "
                        "handles single-subgraph models")


def plan_heuristic(info: ModelInfo) -> Plan:
    _check_plannable(info)
    buffers = planned_buffers(info)
    groups = _groups(buffers, choose_aliases(info))
    return _finish(info, buffers, _place(buffers, groups), groups, "heuristic")


def plan_exact(info: ModelInfo, time_limit_s: float = 30.0, max_buffers: int = 120) -> Plan:
    """Optimal placement of the same chains (CP-SAT, 16-byte units, in a child process).
    Refuses graphs with more than `max_buffers` buffers; if the solver stops at its time
    limit without a proof, the plan's method says 'cp-sat (feasible)'."""
    from tflm_vit.memory.cpsat import solve_in_child

    _check_plannable(info)
    buffers = planned_buffers(info)
    if len(buffers) > max_buffers:
        raise PlanError(f"exact planning is for small graphs: {len(buffers)} buffers > "
                        f"{max_buffers}")
    groups = _groups(buffers, choose_aliases(info))
    heuristic = _place(buffers, groups)
    group_of = {i: g for g, members in enumerate(groups) for i in members}
    conflicts = [(i, j) for i in range(len(buffers)) for j in range(i + 1, len(buffers))
                 if group_of[i] != group_of[j] and buffers[i].overlaps_in_time(buffers[j])]
    answer = solve_in_child({
        "sizes": [b.size // ALIGN for b in buffers], "groups": len(groups),
        "group_of": [group_of[i] for i in range(len(buffers))], "conflicts": conflicts,
        "upper": max((o + b.size for o, b in zip(heuristic, buffers)), default=0) // ALIGN,
        "hints": [heuristic[g[0]] // ALIGN for g in groups], "time_limit_s": time_limit_s})
    if answer["status"] not in ("optimal", "feasible"):
        raise PlanError(f"CP-SAT found no plan in {time_limit_s} s "
                        f"({answer.get('detail', answer['status'])})")
    offsets = [answer["offsets"][group_of[i]] * ALIGN for i in range(len(buffers))]
    return _finish(info, buffers, offsets, groups, f"cp-sat ({answer['status']})")
