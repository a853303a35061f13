"""The arena tail (persistent memory) TFLM allocates for a model, allocation by allocation.

The tail grows down from the arena's end: each allocation moves the tail pointer down by
its size and then down to its alignment, so the total depends on the order, which this
module reproduces. The sequence is the same on every build of TFLM; the sizes are the
target's (targets.py: the wheel's, read off with a debugger on its persistent
allocator; a 32-bit Cortex-M's, read off the same way under QEMU), checked against what
TFLM records by the tests and bench/firmware.py; see docs/memory_model.md.

Order: the allocator objects; per-subgraph arrays; one TfLiteEvalTensor per tensor; one
NodeAndRegistration per op; each op's parsed builtin options (op order); each op's Init
(op order); each op's Prepare (op order); the scratch-buffer handles; then, for each graph
input and then each output, a pointer array entry, a persistent TfLiteTensor and its
quantization.
"""

from __future__ import annotations

import dataclasses

from tflm_vit import _kernels, ops
from tflm_vit.memory.scratch import our_options, scratch_requests
from tflm_vit.memory.targets import DEFAULT_TARGET, TARGETS, Target
from tflm_vit.tflite_model import ModelInfo, OpInfo

KERNEL_ALIGN = 16  # MicroContext::AllocatePersistentBuffer aligns to MicroArenaBufferAlignment
TV_OP_DATA = _kernels.OP_DATA_BYTES  # sizeof(OpData), custom_ops/kernels/tv_options.h
BATCH_MATMUL_QUANT = 28  # BATCH_MATMUL's quantization parameters (no pointers)

# Neither parsed options nor op data (SLICE: no Init, ParseSlice reads nothing; read off
# on the wheel and the M7 with tflm_vit.memory.trace, as the rest).
NO_PERSISTENT = frozenset({"RESHAPE", "TRANSPOSE", "NEG", "SLICE"})
KNOWN_BUILTINS = (frozenset(TARGETS[DEFAULT_TARGET].init_op_data)
                  | frozenset(TARGETS[DEFAULT_TARGET].parsed_options) | NO_PERSISTENT)


def _int_array(n: int) -> int:
    return 4 + 4 * n  # TfLiteIntArray {int size; int data[n];}


def _prepare_allocations(info: ModelInfo, op: OpInfo, target: Target) -> list[int]:
    """Bytes each builtin's Prepare allocates persistently, in order."""
    t = info.tensors
    if op.name == "RESHAPE" and op.outputs and -1 in t[op.outputs[0]].shape:
        return [_int_array(len(t[op.outputs[0]].shape))]  # dims made writable to stretch
    if len(op.inputs) < 2 or min(op.inputs[:2]) < 0 or not op.outputs:
        return []  # not a shape these kernels accept; TFLM refuses such a model anyway
    if op.name in ("FULLY_CONNECTED", "CONV_2D"):
        out_channels = t[op.inputs[1]].shape[0]
        return [4 * out_channels, 4 * out_channels]  # per-channel multipliers and shifts
    if op.name == "DEPTHWISE_CONV_2D" and t[op.inputs[0]].dtype == "INT8":
        out_channels = t[op.inputs[1]].shape[3]  # kDepthwiseConvQuantizedDimension
        return [4 * out_channels, 4 * out_channels]
    if op.name == "GATHER":  # the output's dims, made writable (gather.cc)
        return [_int_array(len(t[op.outputs[0]].shape))]
    if op.name == "BATCH_MATMUL":
        adj_x, adj_y = _batch_matmul_adjoints(info, op)
        lhs, rhs, out = t[op.inputs[0]], t[op.inputs[1]], t[op.outputs[0]]
        sizes = [BATCH_MATMUL_QUANT]
        for transposed, operand in ((adj_x, lhs), (not adj_y, rhs)):
            if transposed:  # a transposed copy: eval tensor, dims, data
                sizes += [target.eval_tensor[0], _int_array(len(operand.shape)), operand.nbytes]
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


def tail_allocations(info: ModelInfo, target: Target = TARGETS[DEFAULT_TARGET]) -> list[Allocation]:
    """Every persistent allocation TFLM makes for the model on the target, in order."""
    t = target
    seq = [Allocation(s, a, "allocator objects") for s, a in t.allocator_objects]
    seq += [Allocation(s, a, "subgraph arrays") for s, a in t.subgraph_arrays]
    seq.append(Allocation(t.eval_tensor[0] * len(info.tensors), t.eval_tensor[1],
                          "TfLiteEvalTensor data"))
    seq.append(Allocation(t.node_and_registration[0] * len(info.ops),
                          t.node_and_registration[1], "NodeAndRegistration structs"))
    for op in info.ops:
        if op.name in t.parsed_options:
            size, align = t.parsed_options[op.name]
            seq.append(Allocation(size, align, "builtin options", op.index))
    for op in info.ops:
        size = TV_OP_DATA if op.name in ops.BY_CODE else t.init_op_data.get(op.name, 0)
        if size:
            seq.append(Allocation(size, KERNEL_ALIGN, "op data", op.index))
    for op in info.ops:
        for size in _prepare_allocations(info, op, t):
            seq.append(Allocation(size, KERNEL_ALIGN, "kernel buffers", op.index))
    n_scratch = sum(len(scratch_requests(info, op, target.kernels)) for op in info.ops)
    if n_scratch:
        seq.append(Allocation(t.scratch_handle[0] * n_scratch, t.scratch_handle[1],
                              "scratch buffer handles"))
    for tensors in (info.inputs, info.outputs):
        seq.append(Allocation(t.pointer * len(tensors), KERNEL_ALIGN,
                              "graph input/output pointers"))
        for i in tensors:
            seq.append(Allocation(t.tflite_tensor[0], t.tflite_tensor[1],
                                  "persistent TfLiteTensor"))
            channels = _quant_channels(info, i)
            if channels:
                seq.append(Allocation(t.affine_quantization[0], t.affine_quantization[1],
                                      "quantization"))
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
                   if op.name not in ops.BY_CODE and op.name not in KNOWN_BUILTINS})


# While TFLM plans (MicroAllocator::CommitStaticMemoryPlan) the head holds the scratch
# requests (one ScratchBufferRequest each, plus room for 12 more), the AllocationInfo
# array (one per tensor and scratch buffer, after the subgraph table) and the greedy
# planner's workspace (40 bytes per planned buffer: no pointers, the same on every
# target), below a tail that has everything but the graph inputs/outputs.
# `print_allocations` does not report this; for tiny models it is what sets the
# smallest arena. Measured on the wheel to within +24 bytes (this figure errs high by up
# to 24).
MAX_SCRATCH_PER_OP = 12
PLANNER_PER_BUFFER = 40
PLANNING_SLACK = 24


def planning_need(info: ModelInfo, allocations: list[Allocation], planned_buffers: int,
                  target: Target = TARGETS[DEFAULT_TARGET]) -> int:
    """Arena bytes TFLM needs at the moment it plans the head."""
    before_io = [a for a in allocations
                 if a.what not in ("graph input/output pointers", "persistent TfLiteTensor",
                                   "quantization", "quantization zero points")]
    n_scratch = sum(len(scratch_requests(info, op, target.kernels)) for op in info.ops)
    align16 = lambda n: -(-n // 16) * 16  # noqa: E731
    return (align16(tail_size(before_io))
            + target.scratch_request * (n_scratch + MAX_SCRATCH_PER_OP)
            + align16(target.allocation_table
                      + target.allocation_info * (len(info.tensors) + n_scratch))
            + PLANNER_PER_BUFFER * planned_buffers + PLANNING_SLACK)


# While each op's Prepare runs (MicroAllocator: StartModelAllocation, then per op
# Prepare + FinishPrepareNodeAllocations) the head holds the scratch requests made so
# far plus room for 12, and above it the op's temporary TfLiteTensors: one per input
# and output the kernel reads (MicroContext::AllocateTempInputTensor / ...Output), each
# with its TfLiteAffineQuantization and zero-point array when quantised. The tail then
# holds everything up to and including that op's own Prepare allocations (a persistent
# buffer allocated after the temporaries may not overlap them: TFLM does not check, and
# the wheel crashes). Counting a builtin's every input and output errs high for kernels
# that skip some; for all but head-light models (an all-dense autoencoder: 19,360 bytes
# needed, 17,328 recorded) the recorded total is larger anyway. Ours are counted exactly:
# before, a small ViT whose arena this phase sets was given 440 bytes too many (random06
# of bench/memory.py: 12,880 for 12,440).


def _temp_tensors(info: ModelInfo, op: OpInfo, target: Target) -> list[tuple[int, int]]:
    """(size, align) of each temporary allocation an op's Prepare makes, in order: a
    builtin's every input and output (erring high for kernels that skip some), ours the
    tensors whose zero points its adapter checks (its tflm_vit/ops module says which)."""
    if op.name in ops.BY_CODE:
        checks = ops.BY_CODE[op.name].zero_point_checks(our_options(info, op))
        tensors = [(op.outputs if side == "output" else op.inputs)[i] for side, i in checks]
    else:
        tensors = [*op.inputs, *op.outputs]
    out = []
    for t in tensors:
        if t < 0:
            continue
        out.append(target.tflite_tensor)
        channels = _quant_channels(info, t)
        if channels:
            out += [target.affine_quantization, (_int_array(channels), 4)]
    return out


def prepare_need(info: ModelInfo, allocations: list[Allocation],
                 target: Target = TARGETS[DEFAULT_TARGET]) -> int:
    """Arena bytes TFLM needs while the most demanding op's Prepare runs."""
    late = ("kernel buffers", "scratch buffer handles", "graph input/output pointers",
            "persistent TfLiteTensor", "quantization", "quantization zero points")
    done = [a for a in allocations if a.what not in late]
    kernel = [a for a in allocations if a.what == "kernel buffers"]
    align16 = lambda n: -(-n // 16) * 16  # noqa: E731
    need, n_scratch = 0, 0
    for op in info.ops:
        done += [a for a in kernel if a.op == op.index]
        p = target.scratch_request * (n_scratch + MAX_SCRATCH_PER_OP)
        for size, align in _temp_tensors(info, op, target):
            p = -(-p // align) * align + size
        need = max(need, align16(tail_size(done)) + p)
        n_scratch += len(scratch_requests(info, op, target.kernels))
    return need
