"""What differs between the builds of TFLM whose arena the memory model predicts: the
sizes and alignments of TFLM's persistent structs and of each builtin's parsed options
and op data. The head (the tensor plan) is the same on every target; only the tail and
the room TFLM needs while planning differ.

- `wheel`: the `tflite-micro` Python wheel (x86-64, 8-byte pointers, 4-byte enums),
  read off with a debugger on its persistent allocator (docs/memory_model.md).
- `cortex-m`: TFLM built for a 32-bit Cortex-M with arm-none-eabi-gcc (4-byte pointers,
  1-byte enums: the AAPCS's short enums), reference kernels; read off the same way on
  the emulated Cortex-M7 (bench/firmware.py checks every figure against what TFLM
  records there).
- `cortex-m-cmsis-nn`: the same with OPTIMIZED_KERNEL_DIR=cmsis_nn, whose kernels keep
  other op data.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    description: str
    kernels: str  # TFLM's kernel set: "reference" or "cmsis_nn" (scratch.py)
    pointer: int  # bytes of a pointer / size_t
    allocator_objects: tuple[tuple[int, int], ...]  # (size, align): arena allocator, MicroAllocator, planner
    subgraph_arrays: tuple[tuple[int, int], ...]
    eval_tensor: tuple[int, int]  # TfLiteEvalTensor (size, align of the array)
    node_and_registration: tuple[int, int]
    scratch_handle: tuple[int, int]
    tflite_tensor: tuple[int, int]  # persistent TfLiteTensor of a graph input/output
    affine_quantization: tuple[int, int]
    parsed_options: dict  # builtin -> (size, align) of its parsed builtin options
    init_op_data: dict  # builtin -> bytes its Init allocates
    # While TFLM plans (see tail.planning_need): a ScratchBufferRequest, an
    # AllocationInfo, the allocation-info table header.
    scratch_request: int
    allocation_info: int
    allocation_table: int
    # The arena to give TFLM is a multiple of this. On Cortex-M, 16: TFLM aligns the
    # tail's top down to 16 bytes, so with a 16-aligned arena start an arena that is
    # not a multiple of 16 loses its last bytes (measured: R0 planned records 21,876
    # and needs 21,888). The wheel's arena comes from the host allocator: the
    # recorded total itself works there.
    arena_multiple: int

    def arena_to_give(self, prediction) -> int:
        """The arena size to hand TFLM on this target for the predicted model."""
        m = self.arena_multiple
        return -(-prediction.arena_size // m) * m


# Op data each reference builtin allocates in Init on a 32-bit Cortex-M build. The
# second group (common MCU CNNs) was read off with tflm_vit.memory.trace on the M7.
_CORTEX_M_INIT = {
    "ADD": 60, "SUB": 52, "MUL": 36, "MEAN": 44, "SUM": 44, "DEQUANTIZE": 32,
    "QUANTIZE": 32, "SQUARED_DIFFERENCE": 112, "RSQRT": 28, "FULLY_CONNECTED": 48,
    "BATCH_MATMUL": 16, "SOFTMAX": 56, "LOGISTIC": 16, "CONV_2D": 56,
    "DEPTHWISE_CONV_2D": 56, "AVERAGE_POOL_2D": 32, "MAX_POOL_2D": 32, "CONCATENATION": 24,
    "STRIDED_SLICE": 84, "PAD": 56, "HARD_SWISH": 20, "TANH": 16, "RELU": 28, "RELU6": 8,
}
# Parsed builtin options that are the same on every target (no pointers, no enums
# before an int): read off on the wheel and the M7 alike.
_SHARED_OPTIONS = {
    "DEPTHWISE_CONV_2D": (28, 4), "AVERAGE_POOL_2D": (40, 4), "MAX_POOL_2D": (40, 4),
    "CONCATENATION": (8, 4), "STRIDED_SLICE": (24, 4), "PACK": (8, 4), "GATHER": (8, 4),
}
_CORTEX_M = dict(
    pointer=4,
    allocator_objects=((52, 4), (44, 4), (124, 4)),
    subgraph_arrays=((8, 4), (8, 4)),
    eval_tensor=(12, 4),
    node_and_registration=(32, 4),
    scratch_handle=(4, 4),
    tflite_tensor=(32, 4),
    affine_quantization=(12, 4),
    parsed_options={
        "ADD": (2, 1), "SUB": (2, 1), "MUL": (1, 1), "MEAN": (1, 1), "SUM": (1, 1),
        "FULLY_CONNECTED": (5, 1), "RESHAPE": (36, 4), "BATCH_MATMUL": (3, 1),
        "SOFTMAX": (4, 4), "CONV_2D": (28, 4), "SHAPE": (1, 1), **_SHARED_OPTIONS,
    },
    scratch_request=12,
    allocation_info=24,
    allocation_table=4,
    arena_multiple=16,
)

TARGETS = {
    "wheel": Target(
        name="wheel",
        description="the tflite-micro Python wheel, x86-64",
        kernels="reference",
        pointer=8,
        allocator_objects=((104, 8), (72, 8), (272, 8)),
        subgraph_arrays=((16, 8), (24, 8)),
        eval_tensor=(24, 8),
        node_and_registration=(64, 8),
        scratch_handle=(8, 8),
        tflite_tensor=(64, 8),
        affine_quantization=(24, 8),
        parsed_options={
            "ADD": (8, 4), "SUB": (8, 4), "MUL": (4, 4), "MEAN": (1, 1), "SUM": (1, 1),
            "FULLY_CONNECTED": (32, 8), "RESHAPE": (36, 4), "BATCH_MATMUL": (3, 1),
            "SOFTMAX": (4, 4), "CONV_2D": (28, 4), "SHAPE": (4, 4), **_SHARED_OPTIONS,
        },
        init_op_data={
            "ADD": 60, "SUB": 52, "MUL": 36, "MEAN": 44, "SUM": 44, "DEQUANTIZE": 32,
            "QUANTIZE": 32, "SQUARED_DIFFERENCE": 112, "RSQRT": 28, "FULLY_CONNECTED": 72,
            "BATCH_MATMUL": 32, "SOFTMAX": 80, "LOGISTIC": 16, "CONV_2D": 80,
            "DEPTHWISE_CONV_2D": 80, "AVERAGE_POOL_2D": 32, "MAX_POOL_2D": 32,
            "CONCATENATION": 80, "STRIDED_SLICE": 84, "PAD": 56, "HARD_SWISH": 20,
            "TANH": 16, "RELU": 28, "RELU6": 8,
        },
        scratch_request=16,
        allocation_info=32,
        allocation_table=8,
        arena_multiple=1,
    ),
    "cortex-m": Target(
        name="cortex-m",
        description="TFLM on a 32-bit Cortex-M (arm-none-eabi-gcc), reference kernels",
        kernels="reference",
        init_op_data=_CORTEX_M_INIT,
        **_CORTEX_M,
    ),
    "cortex-m-cmsis-nn": Target(
        name="cortex-m-cmsis-nn",
        description="TFLM on a 32-bit Cortex-M (arm-none-eabi-gcc), CMSIS-NN kernels",
        kernels="cmsis_nn",
        # CMSIS-NN's ports keep larger op data; their Prepare allocates the same buffers
        # (BATCH_MATMUL's quantization parameters after, not before, its transposed
        # copy: the same total, each allocation being 16-aligned).
        init_op_data={**_CORTEX_M_INIT, "FULLY_CONNECTED": 72, "CONV_2D": 60,
                      "BATCH_MATMUL": 36, "SOFTMAX": 64, "DEPTHWISE_CONV_2D": 60,
                      "AVERAGE_POOL_2D": 36, "MAX_POOL_2D": 36},
        **_CORTEX_M,
    ),
}
DEFAULT_TARGET = "wheel"


def get_target(name_or_target) -> Target:
    if isinstance(name_or_target, Target):
        return name_or_target
    try:
        return TARGETS[name_or_target]
    except KeyError:
        raise ValueError(f"unknown target {name_or_target!r}; choose one of "
                         f"{', '.join(TARGETS)}") from None
