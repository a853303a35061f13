"""The buffers TFLM plans, with the lifetimes it gives them (micro_allocation_info.cc).

Scopes: 0 is the start of the subgraph, op i is scope i + 1. Graph inputs and outputs are
created at scope 0; an op's outputs are (re)created at its scope; every input and output of
an op is used at its scope; graph outputs live to the last scope. A tensor is planned when
it has no data in the model, is not a variable, and has a nonzero size. Buffers are added
in tensor order, then scratch buffers in the order ops requested them; sizes round up to 16.
"""

from __future__ import annotations

import dataclasses

from tflm_vit.memory.greedy import ONLINE, Buffer
from tflm_vit.memory.scratch import scratch_requests
from tflm_vit.tflite_model import ModelInfo

ALIGN = 16  # MicroArenaBufferAlignment


def align_up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclasses.dataclass(frozen=True)
class PlannedBuffer(Buffer):
    tensor: int = -1  # tensor index, or -1 for a scratch buffer
    op: int = -1  # the op a scratch buffer belongs to


def tensor_scopes(info: ModelInfo) -> dict[int, tuple[int, int]]:
    """Tensor index -> (first scope, last scope), for every tensor TFLM would plan."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}

    def create(t, s):
        first[t], last[t] = s, s

    for t in info.inputs + info.outputs:
        create(t, 0)
    for op in info.ops:
        s = op.index + 1
        for t in op.outputs:
            create(t, s)
        for t in op.inputs + op.outputs:
            if t >= 0:
                last[t] = s
    end = len(info.ops)
    for t in info.outputs:
        last[t] = end
    return {t: (first.get(t, -1), last[t]) for t in last if needs_allocating(info, t)}


def needs_allocating(info: ModelInfo, t: int) -> bool:
    ti = info.tensors[t]
    return not ti.is_constant and not ti.is_variable and ti.nbytes > 0


def planned_buffers(info: ModelInfo, offline: list[int] | None = None,
                    kernels: str = "reference") -> list[PlannedBuffer]:
    """The buffers in the order TFLM adds them to its planner. `offline`: one offset per
    tensor (-1 = online), as in an OfflineMemoryAllocation plan; `kernels`: TFLM's
    kernel set, whose scratch requests differ (scratch.py)."""
    scopes = tensor_scopes(info)
    out = []
    for t in sorted(scopes):
        first, last = scopes[t]
        off = offline[t] if offline is not None else ONLINE
        out.append(PlannedBuffer(align_up(info.tensors[t].nbytes), first, last, off,
                                 info.tensors[t].name, tensor=t))
    for op in info.ops:
        for k, size in enumerate(scratch_requests(info, op, kernels)):
            out.append(PlannedBuffer(align_up(size), op.index + 1, op.index + 1, ONLINE,
                                     f"scratch {k} of op {op.index} ({op.name})", op=op.index))
    return out
