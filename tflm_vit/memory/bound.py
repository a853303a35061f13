"""The lower bound on the arena head: at every op, the bytes that must be alive at once
whatever the placement (16-byte rounded, as TFLM sizes buffers): everything alive at
that op, its scratch, less the bytes an input and the output the op writes over it
share (all of the smaller for token overwriting; for the patch embedding, what its lead
leaves). No plan, ours or the optimum, can use less than the largest of these."""

from __future__ import annotations

from tflm_vit.memory.aliasing import handoffs, shared_bytes
from tflm_vit.memory.lifetimes import planned_buffers, tensor_scopes
from tflm_vit.tflite_model import ModelInfo


def live_bytes_bound(info: ModelInfo, kernels: str = "reference") -> list[int]:
    """Per op: bytes alive while it runs (with `kernels`' scratch buffers), net of the
    overwrites it may make."""
    buffers = planned_buffers(info, kernels=kernels)
    scopes = tensor_scopes(info)
    sizes = {b.tensor: b.size for b in buffers if b.tensor >= 0}
    per_op = []
    for op in info.ops:
        s = op.index + 1
        live = sum(b.size for b in buffers if b.first <= s <= b.last)
        saved, used = 0, set()
        for w in handoffs(info, op, scopes):
            if w.dst not in used:
                saved += shared_bytes(sizes[w.src], sizes[w.dst], w.lead)
                used.add(w.dst)
        per_op.append(live - saved)
    return per_op


def head_lower_bound(info: ModelInfo, kernels: str = "reference") -> int:
    return max(live_bytes_bound(info, kernels), default=0)

