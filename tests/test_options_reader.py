"""Our ops' custom options: FlexBuffers maps written by tflm_vit/twins/options.py and read
by the adapters' reader (custom_ops/tflm/options_reader.cc, here through tflm_vit._kernels,
the same source the wheel's library and the firmware compile). Every op round-trips; a
standard FlexBuffers decoder reads them as the map they claim to be; every bad map is
refused with a message naming the problem and the field; no truncation or corrupted byte
crashes the reader or makes it read outside the buffer (it verifies before reading)."""

import numpy as np
import pytest
from flatbuffers import flexbuffers
from hypothesis import given, settings
from hypothesis import strategies as st

from tflm_vit import _kernels as K
from tflm_vit import ops
from tflm_vit.twins import options

INT32 = st.integers(-(2**31), 2**31 - 1)


def _fields(op: str, draw_value, up=1, down=1) -> dict:
    kind, names = options.OPS[op]
    if names is None:
        names = options.mlp_fields(up, down)
    f = {n: draw_value() for n in names}
    if op == "TV_MLP":
        f.update(up_count=up, down_count=down)
    return f


def _expected(op: str) -> int:
    names = options.OPS[op][1]
    return -1 if names is None else len(names)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(options.OPS)), st.data())
def test_every_op_round_trips_through_the_c_reader_and_a_standard_decoder(op, data):
    up, down = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))
    fields = _fields(op, lambda: data.draw(INT32), up, down)
    blob = options.pack(op, fields)
    kind, names = options.OPS[op]
    order = options.field_names(op, fields)
    assert K.parse_options(blob, kind, _expected(op)) == [fields[n] for n in order]
    assert options.unpack(op, blob) == fields
    decoded = flexbuffers.Loads(blob)  # what Netron / any FlexBuffers tool sees
    assert decoded == {"op": op, "version": options.VERSION, **fields}


def _linear() -> bytes:
    return options.pack("TV_LINEAR", dict(tokens=4, in_features=8, out_features=3,
                                          input_offset=-2, output_offset=5))


def _map(**items) -> bytes:
    return bytes(flexbuffers.Dumps(items))


LINEAR = dict(op="TV_LINEAR", version=options.VERSION, tokens=4, in_features=8,
              out_features=3, input_offset=-2, output_offset=5)


@pytest.mark.parametrize("blob, message", [
    (b"", "missing"),
    (b"TVOP" + bytes(28), "old TVOP format"),
    (b"\x01\x02", "not a valid FlexBuffers"),
    (bytes(flexbuffers.Dumps([1, 2, 3])), "not a FlexBuffers map"),
    (_map(**{**LINEAR, "op": "TV_GELU"}), "for another op: op"),
    (_map(**{k: v for k, v in LINEAR.items() if k != "op"}), "lack their op: op"),
    (_map(**{**LINEAR, "version": 1}), "version not supported: version"),
    (_map(**{k: v for k, v in LINEAR.items() if k != "version"}), "lack their version"),
    (_map(**{**LINEAR, "bias": 3}), "unknown field: bias"),
    (_map(**{k: v for k, v in LINEAR.items() if k != "out_features"}),
     "lack a field: out_features"),
    (_map(**{**LINEAR, "tokens": 2**31}), "not an int32: tokens"),
    (_map(**{**LINEAR, "tokens": -(2**31) - 1}), "not an int32: tokens"),
    (_map(**{**LINEAR, "tokens": 4.0}), "not an int32: tokens"),
    (_map(**{**LINEAR, "tokens": True}), "not an int32: tokens"),
    (_map(**{**LINEAR, "tokens": "4"}), "not an int32: tokens"),
])
def test_a_bad_map_is_refused_naming_the_problem_and_the_field(blob, message):
    with pytest.raises(ValueError, match=message):
        K.parse_options(blob, 3, 5)
    with pytest.raises(ValueError, match=f"TV_LINEAR .*{message}"):
        options.unpack("TV_LINEAR", blob)


def test_a_map_for_another_kind_or_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="for another op: op"):
        K.parse_options(_linear(), 1, 6)
    with pytest.raises(ValueError, match="unknown op kind"):
        K.parse_options(_linear(), 99, -1)


def test_the_mlp_takes_its_head_and_the_stages_it_has_without_gaps():
    fields = _fields("TV_MLP", lambda: 7, up=2, down=1)
    blob = options.pack("TV_MLP", fields)
    assert len(K.parse_options(blob, 6, -1)) == len(options.mlp_fields(2, 1))
    gap = {**fields}
    del gap["stage1_out"]
    with pytest.raises(ValueError, match="lack a field: stage1_out"):
        K.parse_options(_map(op="TV_MLP", version=options.VERSION, **gap), 6, -1)
    short = {k: v for k, v in fields.items() if not k.startswith("stage2_")}
    blob = _map(op="TV_MLP", version=options.VERSION, **short)
    K.parse_options(blob, 6, -1)  # the reader takes a whole prefix; the op checks counts
    with pytest.raises(ValueError, match=r"missing \['stage2_"):
        options.unpack("TV_MLP", blob)
    with pytest.raises(ValueError, match="unknown field: stage4_in"):
        K.parse_options(_map(op="TV_MLP", version=options.VERSION, **fields, stage4_in=1),
                        6, -1)


def test_every_truncation_and_corrupted_byte_is_refused_or_read_within_the_buffer():
    """The reader verifies the buffer before it reads: no cut or flipped byte may crash
    it (this process would die) or pass a map with more than the flipped value changed."""
    fields = [i - 5 for i in range(len(options.OPS["TV_ATTENTION"][1]))]
    blob = options.pack("TV_ATTENTION", dict(zip(options.OPS["TV_ATTENTION"][1], fields)))
    for n in range(len(blob)):
        with pytest.raises(ValueError):
            K.parse_options(blob[:n], 5, 11)
    rng = np.random.default_rng(0)
    accepted = 0
    for i in range(len(blob)):
        for bit in range(8):
            bad = bytearray(blob)
            bad[i] ^= 1 << bit
            try:
                got = K.parse_options(bytes(bad), 5, 11)
            except ValueError:
                continue
            # Accepted: the bit was in a value (that one field differs) or in a part the
            # reader does not rely on (the map's own size: it walks the keys vector).
            accepted += 1
            assert sum(a != b for a, b in zip(got, fields)) <= 1 and len(got) == 11, (i, bit)
        junk = bytes(rng.integers(0, 256, len(blob), dtype=np.uint8))
        with pytest.raises(ValueError):
            K.parse_options(junk, 5, 11)
    assert accepted < 8 * len(blob)


def test_an_int64_travels_as_two_int32_fields():
    lo, hi = options.split_int64(2**40 + 5)
    assert (hi << 32) + (lo & 0xFFFFFFFF) == 2**40 + 5


def test_no_field_is_named_like_the_maps_own_keys():
    for spec in ops.ALL:
        names = spec.fields or options.mlp_fields(options._mlp.MAX_STAGES, 0)
        assert not set(names) & set(options.RESERVED), spec.code
