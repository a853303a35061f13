"""Arena planning with token overwriting.

The plan places every tensor TFLM allocates at a byte offset. An op's output may share
bytes with one of its inputs where the op declares that safe (aliasing.py: at the same
offset, or `lead` bytes before the input for the patch embedding) and the input is read
by no later op: the tensors then form one chain with fixed positions relative to each
other that moves through the graph as one block (a ViT's token tensor goes patch
embedding -> LayerNorm -> ... without moving). Scratch buffers are placed too, to keep
room for them, though TFLM itself places scratch online around the fixed tensors.

`plan` (the default) places the chains first-fit under several orders and keeps the
best; when that is above the lower bound (bound.py) it runs CP-SAT (cpsat.py) within a
time limit, started from the heuristic's plan, and keeps whichever TFLM would give the
smaller head. `plan_heuristic` and `plan_exact` are the two halves alone.
"""

from __future__ import annotations

import dataclasses

from tflm_vit.errors import PlanError
from tflm_vit.memory.aliasing import Overwrite, handoffs
from tflm_vit.memory.bound import head_lower_bound
from tflm_vit.memory.greedy import ONLINE, greedy_offsets, head_size
from tflm_vit.memory.lifetimes import ALIGN, PlannedBuffer, planned_buffers, tensor_scopes
from tflm_vit.tflite_model import ModelInfo

DEFAULT_TIME_LIMIT_S = 20.0  # CP-SAT's budget in the default planner
EXACT_MAX_BUFFERS = 600  # beyond this the default planner keeps the heuristic's plan


@dataclasses.dataclass
class Plan:
    """Offsets per tensor (-1 for tensors TFLM does not plan), the head TFLM will use
    with them (scratch placed online, as TFLM does), and the chains that share bytes.
    `method`: "heuristic", "cp-sat" or "tflm" (TFLM's own placement, plan_tflm);
    `exact`: what the exact planner did, if it ran ("optimal", "feasible" (time limit
    reached), "not needed" (the plan met the bound), "skipped: ..." or None when not
    asked)."""

    offsets: list[int]
    head: int
    chains: list[list[int]]  # tensor indices, each chain one block
    method: str
    bound: int = 0  # the head no plan can go below
    exact: str | None = None


def choose_aliases(info: ModelInfo) -> dict[int, Overwrite]:
    """output tensor -> the overwrite it takes (one input per output, one output per
    input)."""
    scopes = tensor_scopes(info)
    taken: set[int] = set()
    alias: dict[int, Overwrite] = {}
    for op in info.ops:
        for w in handoffs(info, op, scopes):
            if w.src in taken:
                continue
            if info.tensors[w.src].nbytes == 0 or w.src in info.outputs:
                continue
            alias[w.dst] = w
            taken.add(w.src)
            break
    return alias


@dataclasses.dataclass
class _Layout:
    """Buffers grouped into chains, each member at a fixed displacement (>= 0, bytes)
    from its chain's offset."""

    buffers: list[PlannedBuffer]
    groups: list[list[int]]
    disp: list[int]


def _layout(info: ModelInfo, kernels: str = "reference") -> _Layout:
    _check_plannable(info)
    buffers = planned_buffers(info, kernels=kernels)
    alias = choose_aliases(info)

    def root_and_pos(t):
        pos = 0
        while t in alias:
            pos -= alias[t].lead
            t = alias[t].src
        return t, pos

    keyed: dict[tuple, list[int]] = {}
    pos = [0] * len(buffers)
    for i, b in enumerate(buffers):
        if b.tensor >= 0:
            root, pos[i] = root_and_pos(b.tensor)
            key = ("t", root)
        else:
            key = ("s", i)
        keyed.setdefault(key, []).append(i)
    groups = list(keyed.values())
    disp = [0] * len(buffers)
    for g in groups:
        low = min(pos[i] for i in g)
        for i in g:
            disp[i] = pos[i] - low
    return _Layout(buffers, groups, disp)


# Orders the first-fit placement tries; each sorts groups (largest extent first,
# longest lived first, earliest first, most byte-scopes first, ...).
def _orders(lay: _Layout):
    b, d = lay.buffers, lay.disp
    extent = [max(d[i] + b[i].size for i in g) for g in lay.groups]
    first = [min(b[i].first for i in g) for g in lay.groups]
    last = [max(b[i].last for i in g) for g in lay.groups]
    area = [sum(b[i].size * (b[i].last - b[i].first + 1) for i in g) for g in lay.groups]
    n = range(len(lay.groups))
    yield sorted(n, key=lambda g: (-extent[g], -(last[g] - first[g])))
    yield sorted(n, key=lambda g: (-(last[g] - first[g]), -extent[g]))
    yield sorted(n, key=lambda g: (-area[g], -extent[g]))
    yield sorted(n, key=lambda g: (first[g], -extent[g]))
    yield sorted(n, key=lambda g: (-last[g], -extent[g]))


def _lowest_base(lay: _Layout, members: list[int], offsets: list[int],
                 placed: list[int]) -> int:
    """The lowest offset for a group (its members at their displacements) that clashes
    with no placed buffer alive at the same time."""
    b, d = lay.buffers, lay.disp
    clashes = [(m, p) for m in members for p in placed if b[m].overlaps_in_time(b[p])]
    candidates = sorted({0} | {offsets[p] + b[p].size - d[m] for m, p in clashes
                               if offsets[p] + b[p].size - d[m] > 0})
    for base in candidates:
        if all(base + d[m] + b[m].size <= offsets[p] or offsets[p] + b[p].size <= base + d[m]
               for m, p in clashes):
            return base
    raise AssertionError("unreachable: the highest candidate clears every clash")


def _first_fit(lay: _Layout, order: list[int]) -> list[int]:
    offsets = [0] * len(lay.buffers)
    placed: list[int] = []
    for g in order:
        members = lay.groups[g]
        base = _lowest_base(lay, members, offsets, placed)
        for m in members:
            offsets[m] = base + lay.disp[m]
        placed.extend(members)
    return offsets


def _finish(info: ModelInfo, lay: _Layout, offsets: list[int], method: str,
            bound: int, kernels: str = "reference") -> Plan:
    plan = [ONLINE] * len(info.tensors)
    for buf, o in zip(lay.buffers, offsets):
        if buf.tensor >= 0:
            plan[buf.tensor] = o
    chains = [[lay.buffers[i].tensor for i in g] for g in lay.groups
              if len(g) > 1 and lay.buffers[g[0]].tensor >= 0]
    return Plan(plan, tflm_head(info, plan, kernels), chains, method, bound)


def tflm_head(info: ModelInfo, offsets: list[int] | None, kernels: str = "reference") -> int:
    """The head TFLM computes for the model with this offline plan (None: no plan), with
    `kernels`' scratch requests (CMSIS-NN's convolutions take an im2col buffer)."""
    bufs = planned_buffers(info, offsets, kernels)
    return head_size(bufs, greedy_offsets(bufs))


def _check_plannable(info: ModelInfo) -> None:
    for t in info.tensors:
        if t.is_dynamic and not t.is_constant:
            raise PlanError(f"tensor {t.index} '{t.name}' has a dynamic shape "
                            f"{t.shape_signature}; only static models can be planned")
    if len(info.model.subgraphs) != 1:
        raise PlanError(f"the model has {len(info.model.subgraphs)} subgraphs; the planner "
                        "handles single-subgraph models")


def plan_heuristic(info: ModelInfo, kernels: str = "reference") -> Plan:
    """The best first-fit plan over the orders of `_orders`, with room for the scratch
    buffers of `kernels` (TFLM's kernel set on the target)."""
    lay = _layout(info, kernels)
    bound = head_lower_bound(info, kernels)
    best = None
    for order in _orders(lay):
        plan = _finish(info, lay, _first_fit(lay, order), "heuristic", bound, kernels)
        if best is None or plan.head < best.head:
            best = plan
    return best


def plan_exact(info: ModelInfo, time_limit_s: float = 30.0,
               max_buffers: int = EXACT_MAX_BUFFERS, start: Plan | None = None,
               kernels: str = "reference") -> Plan:
    """Optimal placement of the same chains (CP-SAT, 16-byte units, in a child process),
    started from `start` (default: the heuristic's plan). Refuses graphs with more than
    `max_buffers` buffers; if the solver stops at its time limit without a proof, the
    plan's `exact` says 'feasible'."""
    from tflm_vit.memory.cpsat import solve_in_child

    lay = _layout(info, kernels)
    if len(lay.buffers) > max_buffers:
        raise PlanError(f"exact planning is for graphs of up to {max_buffers} buffers; this "
                        f"one has {len(lay.buffers)}")
    start = start or plan_heuristic(info, kernels)
    hint = _buffer_offsets(lay, start)
    group_of = {i: g for g, members in enumerate(lay.groups) for i in members}
    b = lay.buffers
    conflicts = [(i, j) for i in range(len(b)) for j in range(i + 1, len(b))
                 if group_of[i] != group_of[j] and b[i].overlaps_in_time(b[j])]
    answer = solve_in_child({
        "sizes": [x.size // ALIGN for x in b], "disp": [x // ALIGN for x in lay.disp],
        "groups": len(lay.groups), "group_of": [group_of[i] for i in range(len(b))],
        "conflicts": conflicts,
        "upper": max((o + x.size for o, x in zip(hint, b)), default=0) // ALIGN,
        "lower": start.bound // ALIGN,
        "hints": [(hint[g[0]] - lay.disp[g[0]]) // ALIGN for g in lay.groups],
        "time_limit_s": time_limit_s})
    if answer["status"] not in ("optimal", "feasible"):
        raise PlanError(f"CP-SAT found no plan in {time_limit_s} s "
                        f"({answer.get('detail', answer['status'])})")
    offsets = [(answer["offsets"][group_of[i]] + lay.disp[i] // ALIGN) * ALIGN
               for i in range(len(b))]
    plan = _finish(info, lay, offsets, "cp-sat", start.bound, kernels)
    plan.exact = answer["status"]
    return plan


def _buffer_offsets(lay: _Layout, plan: Plan) -> list[int]:
    """Each buffer's offset under `plan`; scratch buffers (planned online by TFLM) get
    the offset first-fit gives them around the fixed tensors."""
    out = [plan.offsets[x.tensor] if x.tensor >= 0 else ONLINE for x in lay.buffers]
    fixed = [i for i, o in enumerate(out) if o != ONLINE]
    for i in range(len(out)):
        if out[i] == ONLINE:  # a scratch buffer: a group of one, displacement 0
            out[i] = _lowest_base(lay, [i], out, fixed)
            fixed.append(i)
    return out


def plan_tflm(info: ModelInfo, kernels: str = "reference", bound: int | None = None) -> Plan:
    """TFLM's own greedy placement of the tensors, written as a plan: no bytes shared.
    Taking every overwrite fixes the members of a chain relative to each other, which on
    some graph could leave first-fit above what TFLM finds without them; this plan is
    always a candidate, so a plan is never worse than TFLM's own. `bound`: the head's
    lower bound when the caller has it (bound.py)."""
    bufs = planned_buffers(info, None, kernels)
    found = [ONLINE] * len(info.tensors)
    for buf, o in zip(bufs, greedy_offsets(bufs)):
        if buf.tensor >= 0:
            found[buf.tensor] = o
    return Plan(found, tflm_head(info, found, kernels), [], "tflm",
                head_lower_bound(info, kernels) if bound is None else bound)


def plan(info: ModelInfo, time_limit_s: float = DEFAULT_TIME_LIMIT_S,
         exact: bool | None = None, kernels: str = "reference") -> Plan:
    """The default planner. exact=None: the heuristic, then CP-SAT within `time_limit_s`
    when the heuristic is above the bound (and the graph is not too large); True: CP-SAT
    always (an error if it cannot run); False: the heuristic alone. TFLM's own placement
    (plan_tflm) is a candidate throughout: where it is smaller, it is the plan."""
    heuristic = plan_heuristic(info, kernels)
    tflm = plan_tflm(info, kernels, heuristic.bound)
    best = tflm if tflm.head < heuristic.head else heuristic
    if exact is False:
        return best
    if exact is None and best.head <= best.bound:
        best.exact = "not needed"
        return best
    try:  # CP-SAT places the chains, so it starts from the plan that has them
        found = plan_exact(info, time_limit_s, start=heuristic, kernels=kernels)
    except PlanError as e:
        if exact:
            raise
        best.exact = f"skipped: {e}"
        return best
    if found.head < best.head:
        return found
    best.exact = found.exact
    return best
