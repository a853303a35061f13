"""One definition of our ops' kinds and option fields: custom_ops/kernels/tv_op_fields.h
is generated from tflm_vit/ops/options.py and must be current."""

import pathlib

from tflm_vit.ops import options

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_c_header_is_generated_from_the_python_table():
    assert (REPO / options.HEADER).read_text() == options.c_header(), (
        f"{options.HEADER} is stale: run python -m tflm_vit.ops.options --header "
        f"{options.HEADER}")


def test_every_field_is_in_the_header_at_its_position():
    header = (REPO / options.HEADER).read_text()
    for op, (kind, names) in options.OPS.items():
        assert f"TV_OP_{op[3:]} = {kind}," in header
        for i, name in enumerate(names or options.MLP_HEAD):
            assert f"  {op}_{name.upper()} = {i},\n" in header
