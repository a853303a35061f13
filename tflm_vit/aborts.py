"""Models on which TFLM aborts instead of failing: checked before any TFLM sees them.

TFLM's kernels check some quantisation parameters with TFLITE_CHECK, which calls
abort(): the wheel then takes the Python process down with SIGABRT and no message, and
firmware stops in its abort handler. `check_loads` names the op and the reason first.
"""

from __future__ import annotations

from tflm_vit.errors import ModelFileError
from tflm_vit.tflite_model import ModelInfo

# softmax_common.cc: PreprocessSoftmaxScaling(beta, input_scale, kScaledDiffIntegerBits=5)
# hands beta * input_scale * 2^(31 - 5) to QuantizeMultiplierGreaterThanOne, which
# TFLITE_CHECKs that it is above 1 (quantization_util.cc).
SOFTMAX_INTEGER_BITS = 5


def check_loads(info: ModelInfo) -> None:
    """ModelFileError naming the op when TFLM would abort while preparing the model."""
    sg = info.model.subgraphs[0]
    for op in info.ops:
        if op.name != "SOFTMAX" or not op.inputs or info.tensors[op.inputs[0]].dtype != "INT8":
            continue
        q = sg.tensors[op.inputs[0]].quantization
        if q is None or q.scale is None or not len(q.scale):
            continue
        beta = float(getattr(sg.operators[op.index].builtinOptions, "beta", 1.0))
        scale = float(q.scale[0])
        if not beta * scale * 2.0 ** (31 - SOFTMAX_INTEGER_BITS) > 1.0:
            raise ModelFileError(
                f"op {op.index} (SOFTMAX): input scale {scale:.3g} x beta {beta:g} is at or "
                f"below 2^-{31 - SOFTMAX_INTEGER_BITS}, where TFLM's Prepare aborts "
                "(QuantizeMultiplierGreaterThanOne); the logits' range is too small, as "
                "with untrained weights: calibrate on real data or rescale the logits")
