"""The arena tail (persistent memory) TFLM allocates for a model, allocation by allocation.

The tail grows down from the arena's end: each allocation moves the tail pointer down by
its size and then down to its alignment, so the total depends on the order, which this
module reproduces. The sequence and sizes were read off the `tflite-micro` wheel
(x86-64, 8-byte pointers) with a debugger on its persistent allocator and are checked
against `print_allocations()` by the tests; see docs/memory_model.md. On a 32-bit
Cortex-M build the struct sizes differ (pointers are 4 bytes), so these figures are for
the wheel; the head (the tensor plan) is the same on both.

Order: the allocator objects; per-subgraph arrays; one TfLiteEvalTensor per tensor; one
NodeAndRegistration per op; each op's parsed builtin options (op order); each op's Init
(op order); each op's Prepare (op order); the scratch-buffer handles; then, for each graph
input and then each output, a pointer array entry, a persistent TfLiteTensor and its
quantization.
"""

from __future__ import annotations

import dataclasses

from tflm_vit.memory.scratch import scratch_requests
from tflm_vit.ops import options as tv_options
from tflm_vit.tflite_model import ModelInfo, OpInfo

KERNEL_ALIGN = 16  # MicroContext::AllocatePersistentBuffer aligns to MicroArenaBufferAlignment

# Wheel (x86-64) struct sizes.
ALLOCATOR_OBJECTS = ((104, 8), (72, 8), (272, 8))  # arena allocator, MicroAllocator, planner
SUBGRAPH_ARRAYS = ((16, 8), (24, 8))
EVAL_TENSOR = 24
NODE_AND_REGISTRATION = 64
SCRATCH_HANDLE = 8
TFLITE_TENSOR = 64
AFFINE_QUANTIZATION = 24
TV_OP_DATA = 140  # sizeof(OpData) in custom_ops/tflm/op_common.h: tv_options + scratch index

# Builtin options parsed into persistent memory: op -> (size, alignment).
PARSED_OPTIONS = {
    "ADD": (8, 4), "SUB": (8, 4), "MUL": (4, 4), "MEAN": (1, 1), "SUM": (1, 1),
    "FULLY_CONNECTED": (32, 8), "RESHAPE": (36, 4), "BATCH_MATMUL": (3, 1),
    "SOFTMAX": (4, 4), "CONV_2D": (28, 4),
}
# Op data each builtin allocates in Init (bytes).
INIT_OP_DATA = {
    "ADD": 60, "SUB": 60, "MUL": 36, "MEAN": 44, "SUM": 44, "DEQUANTIZE": 32,
    "QUANTIZE": 32, "SQUARED_DIFFERENCE": 112, "RSQRT": 28, "FULLY_CONNECTED": 72,
    "BATCH_MATMUL": 32, "SOFTMAX": 80, "LOGISTIC": 16, "CONV_2D": 80,
}
NO_PERSISTENT = frozenset({"RESHAPE", "TRANSPOSE", "NEG"})
KNOWN_BUILTINS = frozenset(INIT_OP_DATA) | frozenset(PARSED_OPTIONS) | NO_PERSISTENT


def _int_array(n: int) -> int:
    return 4 + 4 * n  # TfLiteIntArray {int size; int data[n];}


def _prepare_allocations(info: ModelInfo, op: OpInfo) -> list[int]:
    """Bytes each builtin's Prepare allocates persistently, in order."""
    t = info.tensors
    if len(op.inputs) < 2 or min(op.inputs[:2]) < 0 or not op.outputs:
        return []  # not a shape these kernels accept; TFLM refuses such a model anyway
    if op.name in ("FULLY_CONNECTED", "CONV_2D"):
        out_channels = t[op.inputs[1]].shape[0]
        return [4 * out_channels, 4 * out_channels]  # per-channel multipliers and shifts
    if op.name == "BATCH_MATMUL":
        adj_x, adj_y = _batch_matmul_adjoints(info, op)
        lhs, rhs, out = t[op.inputs[0]], t[op.inputs[1]], t[op.outputs[0]]
        sizes = [28]  # quantization parameters
        for transposed, operand in ((adj_x, lhs), (not adj_y, rhs)):
            if transposed:  # a transposed copy: eval tensor, dims, data
                sizes += [EVAL_TENSOR, _int_array(len(operand.shape)), operand.nbytes]
        return sizes + [_int_array(len(out.shape))]  # writable output dims
    return []


def _batch_matmul_adjoints(info: ModelInfo, op: OpInfo) -> tuple[bool, bool]:
    opts = info.model.subgraphs[0].operators[op.index].builtinOptions
    return bool(getattr(opts, "adjX", False)), bool(getattr(opts, "adjY", False))


@dataclasses.dataclass(frozen=True)
class Allocation:
    size: int
    align: int
    what: str
    op: int = -1  # the op it belongs to, -1 for the interpreter's own


def tail_allocations(info: ModelInfo) -> list[Allocation]:
    """Every persistent allocation TFLM makes for the model, in order."""
    seq = [Allocation(s, a, "allocator objects") for s, a in ALLOCATOR_OBJECTS]
    seq += [Allocation(s, a, "subgraph arrays") for s, a in SUBGRAPH_ARRAYS]
    seq.append(Allocation(EVAL_TENSOR * len(info.tensors), 8, "TfLiteEvalTensor data"))
    seq.append(Allocation(NODE_AND_REGISTRATION * len(info.ops), 8,
                          "NodeAndRegistration structs"))
    for op in info.ops:
        if op.name in PARSED_OPTIONS:
            size, align = PARSED_OPTIONS[op.name]
            seq.append(Allocation(size, align, "builtin options", op.index))
    for op in info.ops:
        size = TV_OP_DATA if op.name in tv_options.OPS else INIT_OP_DATA.get(op.name, 0)
        if size:
            seq.append(Allocation(size, KERNEL_ALIGN, "op data", op.index))
    for op in info.ops:
        for size in _prepare_allocations(info, op):
            seq.append(Allocation(size, KERNEL_ALIGN, "kernel buffers", op.index))
    n_scratch = sum(len(scratch_requests(info, op)) for op in info.ops)
    if n_scratch:
        seq.append(Allocation(SCRATCH_HANDLE * n_scratch, 8, "scratch buffer handles"))
    for tensors in (info.inputs, info.outputs):
        seq.append(Allocation(8 * len(tensors), KERNEL_ALIGN, "graph input/output pointers"))
        for t in tensors:
            seq.append(Allocation(TFLITE_TENSOR, 8, "persistent TfLiteTensor"))
            channels = _quant_channels(info, t)
            if channels:
                seq.append(Allocation(AFFINE_QUANTIZATION, 8, "quantization"))
                seq.append(Allocation(_int_array(channels), 4, "quantization zero points"))
    return seq


def _quant_channels(info: ModelInfo, t: int) -> int:
    q = info.model.subgraphs[0].tensors[t].quantization
    if q is None or q.scale is None or q.zeroPoint is None:
        return 0
    return len(q.scale) if len(q.scale) and len(q.zeroPoint) else 0


def tail_size(allocations: list[Allocation]) -> int:
    """Bytes from the arena's (16-aligned) end down to the lowest allocation."""
    p = 0  # offset below the end, growing
    for a in allocations:
        p += a.size
        p = -(-p // a.align) * a.align  # the pointer moves down to the alignment
    return p


def unknown_ops(info: ModelInfo) -> list[str]:
    """Builtins whose persistent allocations this model does not know."""
    return sorted({op.name for op in info.ops
                   if op.name not in tv_options.OPS and op.name not in KNOWN_BUILTINS})


# While TFLM plans (MicroAllocator::CommitStaticMemoryPlan) the head holds the scratch
# requests (16 bytes each, plus room for 12 more), the AllocationInfo array (32 bytes per
# tensor and scratch buffer, after an 8-byte subgraph table) and the greedy planner's
# workspace (40 bytes per planned buffer), below a tail that has everything but the
# graph inputs/outputs. `print_allocations` does not report this; for tiny models it is
# what sets the smallest arena. Measured on the wheel to within +24 bytes (this figure
# errs high by up to 24).
SCRATCH_REQUEST = 16
MAX_SCRATCH_PER_OP = 12
ALLOCATION_INFO = 32
PLANNER_PER_BUFFER = 40
PLANNING_SLACK = 24


def planning_need(info: ModelInfo, allocations: list[Allocation], planned_buffers: int) -> int:
    """Arena bytes TFLM needs at the moment it plans the head."""
    before_io = [a for a in allocations
                 if a.what not in ("graph input/output pointers", "persistent TfLiteTensor",
                                   "quantization", "quantization zero points")]
    n_scratch = sum(len(scratch_requests(info, op)) for op in info.ops)
    align16 = lambda n: -(-n // 16) * 16  # noqa: E731
    return (align16(tail_size(before_io)) + SCRATCH_REQUEST * (n_scratch + MAX_SCRATCH_PER_OP)
            + align16(8 + ALLOCATION_INFO * (len(info.tensors) + n_scratch))
            + PLANNER_PER_BUFFER * planned_buffers + PLANNING_SLACK)
