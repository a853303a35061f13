"""One definition of each table shared by Python and C: our ops' kinds and option fields
(custom_ops/kernels/tv_op_fields.h, generated from tflm_vit/twins/options.py) and the
kernel kinds of the test-vector tape (custom_ops/tests/vector_kinds.h, generated from
tflm_vit/twins/vectors.py); each must be current."""

import pathlib

from tflm_vit.twins import options, vectors

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_c_header_is_generated_from_the_python_table():
    assert (REPO / options.HEADER).read_text() == options.c_header(), (
        f"{options.HEADER} is stale: run python -m tflm_vit.twins.options --header "
        f"{options.HEADER}")


def test_every_field_is_in_the_header_at_its_position():
    header = (REPO / options.HEADER).read_text()
    for op, (kind, names) in options.OPS.items():
        assert f"TV_OP_{op[3:]} = {kind}," in header
        for i, name in enumerate(names or options.MLP_HEAD):
            assert f"  {op}_{name.upper()} = {i},\n" in header


def test_vector_kinds_header_is_generated_from_the_python_table():
    assert (REPO / vectors.HEADER).read_text() == vectors.c_header(), (
        f"{vectors.HEADER} is stale: run python -m tflm_vit.twins.vectors --header "
        f"{vectors.HEADER}")
    source = (REPO / "custom_ops/tests/vector_tests.c").read_text()
    assert '#include "vector_kinds.h"' in source
    assert "KIND_LINEAR = " not in source  # the enum lives in the header only
