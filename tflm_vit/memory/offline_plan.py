"""TFLM's offline memory plan: the `OfflineMemoryAllocation` model metadata.

Format (TFLM micro_allocation_info.cc; verified in the wheel, ../shared/reference):
little-endian int32 words [version, subgraphs, n, offset_0 .. offset_{n-1}], n = the
number of tensors over all subgraphs, offset -1 = plan this tensor online. Offsets are
bytes from the start of the arena's head. TFLM follows them exactly and never checks
them, so every plan read or written here goes through `check_plan` first.
"""

from __future__ import annotations

import numpy as np

from tflm_vit.errors import PlanError
from tflm_vit.tflite_model import ModelInfo, load_model

METADATA_NAME = "OfflineMemoryAllocation"
VERSION = 1
ONLINE = -1


def encode(offsets: list[int], subgraphs: int = 1) -> bytes:
    words = np.array([VERSION, subgraphs, len(offsets), *offsets], dtype="<i4")
    return words.tobytes()


def decode(blob: bytes, tensor_count: int) -> list[int]:
    """Offsets from a metadata buffer; PlanError names what is wrong with it."""
    if len(blob) % 4 or len(blob) < 12:
        raise PlanError(f"{METADATA_NAME}: {len(blob)} bytes is not a header of three "
                        "int32 words plus whole int32 offsets")
    words = np.frombuffer(blob, dtype="<i4")
    n = int(words[2])
    if n != tensor_count:
        raise PlanError(f"{METADATA_NAME}: holds {n} offsets but the model has "
                        f"{tensor_count} tensors")
    if len(words) != 3 + n:
        raise PlanError(f"{METADATA_NAME}: header says {n} offsets, buffer holds "
                        f"{len(words) - 3}")
    offsets = [int(x) for x in words[3:]]
    bad = [i for i, o in enumerate(offsets) if o < ONLINE]
    if bad:
        raise PlanError(f"{METADATA_NAME}: tensor {bad[0]} has offset {offsets[bad[0]]} "
                        "(only -1 or a byte offset >= 0 are valid)")
    return offsets


def read_plan(model) -> list[int] | None:
    """The model's offline offsets, or None when it has no plan."""
    data, info = load_model(model)
    return plan_of(info)


def plan_of(info: ModelInfo) -> list[int] | None:
    m = info.model
    for md in m.metadata or []:
        name = md.name.decode() if isinstance(md.name, bytes) else md.name
        if name != METADATA_NAME:
            continue
        if not 0 <= md.buffer < len(m.buffers or []):
            raise PlanError(f"{METADATA_NAME}: refers to buffer {md.buffer} of "
                            f"{len(m.buffers or [])}")
        raw = m.buffers[md.buffer].data
        blob = bytes(np.asarray(raw, dtype=np.uint8)) if raw is not None else b""
        return decode(blob, sum(len(sg.tensors or []) for sg in m.subgraphs))
    return None


def write_plan(model_bytes: bytes, offsets: list[int]) -> bytes:
    """The model with `offsets` as its offline plan (any previous plan replaced). The
    caller checks the plan; this only checks that tensor order survived the rewrite."""
    from tflm_vit.converters import model_io
    from tflm_vit.tflite_model import parse_model

    before = parse_model(model_bytes)
    if len(offsets) != len(before.tensors):
        raise PlanError(f"plan has {len(offsets)} offsets for {len(before.tensors)} tensors")
    model = model_io.read(model_bytes)
    model.metadata[METADATA_NAME] = encode(offsets)
    out = model_io.build(model)
    after = parse_model(out)
    if [t.name for t in after.tensors] != [t.name for t in before.tensors]:
        raise PlanError("rewriting the model reordered its tensors; the plan would not "
                        "match them")
    return out
