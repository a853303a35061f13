"""One definition of each table shared by Python and C: our ops' kinds and option fields
(custom_ops/kernels/tv_op_fields.h) and their FlexBuffers keys (custom_ops/tflm/
option_names.h), both generated from tflm_vit/twins/options.py, and the kernel kinds of
the test-vector tape (custom_ops/tests/vector_kinds.h, generated from
tflm_vit/twins/vectors.py); each must be current."""

import pathlib
import re

from tflm_vit.ops import mlp
from tflm_vit.twins import options, vectors

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_c_headers_are_generated_from_the_python_table():
    for path, text in ((options.HEADER, options.c_header()),
                       (options.NAMES_HEADER, options.names_header())):
        assert (REPO / path).read_text() == text, (
            f"{path} is stale: run python -m tflm_vit.twins.options --write")


def _c_define(path: str, name: str) -> int:
    text = (REPO / path).read_text()
    return int(re.search(rf"#define {name} (\d+)", text).group(1))


def test_the_key_lists_fit_the_c_struct_and_the_mlp_its_stage_limit():
    most = _c_define("custom_ops/kernels/tv_options.h", "TV_OPTIONS_MAX_FIELDS")
    for op, (_, names) in options.OPS.items():
        assert len(names or options.mlp_fields(mlp.MAX_STAGES, 0)) <= most, op
    per_side = _c_define("custom_ops/kernels/tv_mlp.h", "TV_MLP_MAX_STAGES")
    assert mlp.MAX_STAGES == 2 * per_side


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
