"""Reading and checking TFLite flatbuffers (flatbuffers object API of the wheel's schema).

Everything handed to the TFLM runtime goes through `load_model` first, so a
truncated or corrupted file is a clear ModelFileError, never a crash in C++.
"""

from __future__ import annotations

import dataclasses
import os
import struct

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from tflm_vit.errors import ModelFileError

FILE_IDENTIFIER = b"TFL3"
BUILTIN_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
TYPE_BYTES = {"FLOAT32": 4, "INT32": 4, "INT8": 1, "UINT8": 1, "INT16": 2, "INT64": 8,
              "BOOL": 1, "FLOAT16": 2, "FLOAT64": 8, "UINT32": 4, "UINT16": 2, "INT4": 1}


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    is_constant: bool  # has data in a buffer (weights, biases, shapes)
    is_variable: bool
    shape_signature: tuple[int, ...] = ()

    @property
    def is_dynamic(self) -> bool:
        return any(d < 0 for d in self.shape_signature)


@dataclasses.dataclass(frozen=True)
class OpInfo:
    index: int
    name: str  # builtin name (e.g. FULLY_CONNECTED) or the custom code
    inputs: tuple[int, ...]  # -1 marks an omitted optional input
    outputs: tuple[int, ...]


@dataclasses.dataclass
class ModelInfo:
    """Subgraph 0 of a model, flattened for analysis."""

    model: schema.ModelT
    size: int
    tensors: list[TensorInfo]
    ops: list[OpInfo]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.name] = counts.get(op.name, 0) + 1
        return counts


def read_model_bytes(path_or_bytes) -> bytes:
    """Bytes of a TFLite model from a path or bytes; ModelFileError if unusable."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        data = bytes(path_or_bytes)
        where = "model bytes"
    else:
        path = os.fspath(path_or_bytes)
        if isinstance(path, str) and (len(path) > 1024 or "\n" in path or "\0" in path):
            raise ModelFileError(f"{path[:40]!r}...: a {len(path):,}-character string, not a "
                                 "path to a .tflite file (pass the model's path or bytes)")
        if os.path.isdir(path):
            raise ModelFileError(f"{path}: is a directory, not a .tflite file")
        if not os.path.isfile(path):
            raise ModelFileError(f"{path}: no such file")
        with open(path, "rb") as f:
            data = f.read()
        where = path
    if len(data) < 8 or data[4:8] != FILE_IDENTIFIER:
        raise ModelFileError(f"{where}: not a TFLite flatbuffer (file identifier "
                             f"{data[4:8]!r}, expected {FILE_IDENTIFIER!r})")
    return data


def _operator_name(model: schema.ModelT, opcode_index: int) -> str:
    code = model.operatorCodes[opcode_index]
    builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
    if builtin == schema.BuiltinOperator.CUSTOM:
        return (code.customCode or b"").decode() if isinstance(code.customCode, bytes) \
            else str(code.customCode)
    return BUILTIN_NAMES.get(builtin, f"BUILTIN_{builtin}")


def parse_model(data: bytes, where: str = "model") -> ModelInfo:
    """Parse and check a model's structure; ModelFileError names what is broken."""
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    except (struct.error, IndexError, UnicodeDecodeError, ValueError, TypeError) as e:
        raise ModelFileError(f"{where}: truncated or corrupted flatbuffer ({e})") from None
    if not model.subgraphs:
        raise ModelFileError(f"{where}: has no subgraph")
    sg = model.subgraphs[0]
    buffers = model.buffers or []
    n_tensors = len(sg.tensors or [])
    tensors = []
    for i, t in enumerate(sg.tensors or []):
        name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else str(t.name)
        dtype = TYPE_NAMES.get(t.type)
        if dtype is None:
            raise ModelFileError(f"{where}: tensor {i} '{name}' has unknown type {t.type}")
        shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
        if any(d < 0 for d in shape):
            raise ModelFileError(f"{where}: tensor {i} '{name}' has negative shape {shape}")
        if not 0 <= t.buffer < max(len(buffers), 1):
            raise ModelFileError(f"{where}: tensor {i} '{name}' refers to buffer {t.buffer} "
                                 f"of {len(buffers)}")
        buf = buffers[t.buffer] if buffers else None
        has_data = buf is not None and (
            (buf.data is not None and len(buf.data) > 0) or (buf.offset or 0) > 1)
        nbytes = int(np.prod(shape, dtype=np.int64)) * TYPE_BYTES.get(dtype, 1)
        if has_data and buf.data is not None and len(buf.data) != nbytes \
                and dtype not in ("INT4", "STRING"):
            raise ModelFileError(f"{where}: tensor {i} '{name}' holds {len(buf.data)} bytes "
                                 f"of data but its shape {shape} needs {nbytes}")
        sig = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else ()
        tensors.append(TensorInfo(i, name, shape, dtype, nbytes, bool(has_data),
                                  bool(t.isVariable), sig))
    ops = []
    n_codes = len(model.operatorCodes or [])
    for i, op in enumerate(sg.operators or []):
        if not 0 <= op.opcodeIndex < n_codes:
            raise ModelFileError(f"{where}: operator {i} has opcode index {op.opcodeIndex} "
                                 f"of {n_codes}")
        ins = tuple(int(x) for x in (op.inputs if op.inputs is not None else ()))
        outs = tuple(int(x) for x in (op.outputs if op.outputs is not None else ()))
        name = _operator_name(model, op.opcodeIndex)
        for x in ins + outs:
            if not -1 <= x < n_tensors:
                raise ModelFileError(f"{where}: operator {i} ({name}) refers to tensor {x} "
                                     f"of {n_tensors}")
        ops.append(OpInfo(i, name, ins, outs))
    io = [tuple(int(x) for x in (v if v is not None else ())) for v in (sg.inputs, sg.outputs)]
    for x in io[0] + io[1]:
        if not 0 <= x < n_tensors:
            raise ModelFileError(f"{where}: subgraph input/output refers to tensor {x} "
                                 f"of {n_tensors}")
    return ModelInfo(model, len(data), tensors, ops, io[0], io[1])


def load_model(path_or_bytes) -> tuple[bytes, ModelInfo]:
    """read_model_bytes + parse_model."""
    data = read_model_bytes(path_or_bytes)
    where = "model bytes" if isinstance(path_or_bytes, (bytes, bytearray, memoryview)) \
        else os.fspath(path_or_bytes)
    return data, parse_model(data, where)
