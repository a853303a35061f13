"""Re-verifies any offline plan (ours or one read from a model) before TFLM sees it:
TFLM follows offsets blindly, so an unsafe overlap would silently give wrong outputs."""

from __future__ import annotations

from tflm_vit.errors import PlanError
from tflm_vit.memory.aliasing import handoffs
from tflm_vit.memory.lifetimes import ALIGN, align_up, needs_allocating, tensor_scopes
from tflm_vit.tflite_model import ModelInfo

ONLINE = -1


def _label(info: ModelInfo, t: int) -> str:
    return f"tensor {t} '{info.tensors[t].name}'"


def check_plan(info: ModelInfo, offsets: list[int], arena_head: int | None = None) -> None:
    """PlanError naming the tensors (and op) if two buffers alive at the same time share
    bytes in a way no op declared safe, or an offset is misaligned, out of range or
    given to a tensor TFLM does not plan."""
    if len(offsets) != len(info.tensors):
        raise PlanError(f"plan has {len(offsets)} offsets for {len(info.tensors)} tensors")
    scopes = tensor_scopes(info)
    fixed = []
    for t, o in enumerate(offsets):
        if o == ONLINE:
            continue
        if o < 0:
            raise PlanError(f"{_label(info, t)}: offset {o} is negative")
        if not needs_allocating(info, t):
            raise PlanError(f"{_label(info, t)} is not planned by TFLM (constant, variable "
                            f"or empty) but the plan gives it offset {o}")
        if o % ALIGN:
            raise PlanError(f"{_label(info, t)}: offset {o} is not a multiple of {ALIGN}")
        end = o + align_up(info.tensors[t].nbytes)
        if arena_head is not None and end > arena_head:
            raise PlanError(f"{_label(info, t)} ends at byte {end}, past the arena head of "
                            f"{arena_head} bytes")
        fixed.append((t, o, end))
    safe = _declared_handoffs(info, scopes)
    fixed.sort(key=lambda x: x[1])
    for i, (a, ao, ae) in enumerate(fixed):
        for b, bo, be in fixed[i + 1:]:
            if bo >= ae:
                break  # sorted by offset: nothing further overlaps a
            (af, al), (bf, bl) = scopes[a], scopes[b]
            if af > bl or bf > al:
                continue  # never alive together
            # A declared overwrite, at exactly its displacement.
            if safe.get((a, b)) == ao - bo or safe.get((b, a)) == bo - ao:
                continue
            both = max(af, bf)
            op = info.ops[both - 1].name if both >= 1 else "graph start"
            raise PlanError(
                f"{_label(info, a)} (bytes {ao}..{ae}, alive ops {af - 1}..{al - 1}) and "
                f"{_label(info, b)} (bytes {bo}..{be}, alive ops {bf - 1}..{bl - 1}) overlap "
                f"while both are alive (op {both - 1}, {op}), and no op declares that safe")


def _declared_handoffs(info: ModelInfo, scopes) -> dict[tuple[int, int], int]:
    """(input, output) -> lead, for pairs an op may share where the input dies at that
    op and the output is born there: the only overlaps a plan may contain, each only
    with the output exactly `lead` bytes before the input."""
    return {(w.src, w.dst): w.lead for op in info.ops for w in handoffs(info, op, scopes)}
