"""One home per op (tflm_vit/ops): every op module is listed, kinds are the C enum's in
order, each op is registered on the C side under its code, its twin exists, and what
the options codec, the in-place rules, the conversion checks and the latency model know
about our ops is what the modules declare."""

import importlib
import pathlib
import pkgutil

import tflm_vit.ops as ops_package
from tflm_vit import ops
from tflm_vit.converters import verify
from tflm_vit.memory import aliasing
from tflm_vit.twins import options

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_every_op_module_is_listed_once_in_kind_order():
    modules = {m.name for m in pkgutil.iter_modules(ops_package.__path__)} - {"spec"}
    specs = [importlib.import_module(f"tflm_vit.ops.{m}").SPEC for m in sorted(modules)]
    assert sorted(s.code for s in specs) == sorted(ops.CODES)
    assert [s.kind for s in ops.ALL] == list(range(1, len(ops.ALL) + 1))
    assert len(set(ops.CODES)) == len(ops.ALL)


def test_each_op_is_registered_in_c_under_its_code_and_has_a_twin():
    table = (REPO / "custom_ops/tflm/op_table.h").read_text()
    for s in ops.ALL:
        assert f'{{"{s.code}", Register_{s.code}}}' in table, s.code
        importlib.import_module(s.twin)


def test_what_the_rest_knows_is_what_the_ops_declare():
    assert options.OPS == {s.code: (s.kind, s.fields) for s in ops.ALL}
    assert aliasing.TOKENWISE | aliasing.AT_LEAD == {s.code for s in ops.ALL
                                                     if s.overwrite is not None}
    assert verify.STOCK_LSB_BOUND == {s.code: s.stock_lsb_bound for s in ops.ALL}
    assert verify.EXACT_WITH_STOCK == {s.code for s in ops.ALL if s.exact_with_stock}
    # an op exact with stock has a 0 LSB bound, and only those
    assert all((s.stock_lsb_bound == 0) == s.exact_with_stock for s in ops.ALL)


def test_latency_features_come_from_the_op_modules():
    # TV_LINEAR over 4 tokens, 8 -> 3 features: 96 MACs, its 12 outputs per element
    f = dict(tokens=4, in_features=8, out_features=3, input_offset=0, output_offset=0)
    assert ops.BY_CODE["TV_LINEAR"].features(f, 12) == (96, 12)
    f = dict(tokens=2, up_count=1, down_count=1, stage0_in=4, stage0_out=8, stage1_in=8,
             stage1_out=4)
    assert ops.BY_CODE["TV_MLP"].features(f, 8) == (2 * (32 + 32), 2 * 12)


def test_the_prepare_temporaries_declared_are_the_adapters_zero_point_checks():
    # Each op module's zero_point_checks (the memory model's prepare-phase room) lists
    # the CheckZeroPoint calls of its adapter's Prepare, in order; GELU's table mode
    # checks none (the table encodes both quantizations), its shift mode both.
    import re
    for s in ops.ALL:
        source = (REPO / f"custom_ops/tflm/{s.code[3:].lower()}_op.cc").read_text()
        calls = re.findall(r"CheckZeroPoint\(kOp, \"\w+\", context, node, (true|false), (\d)",
                           source)
        in_source = tuple(("output" if side == "true" else "input", int(i))
                          for side, i in calls)
        modes = ({"mode": 1}, {"mode": 0}) if s.code == "TV_GELU" else ({},)
        declared = [s.zero_point_checks(m) for m in modes]
        assert declared[0] == in_source, s.code
        if s.code == "TV_GELU":
            assert declared[1] == () and "mode == kModeShift &&" in source
