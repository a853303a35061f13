"""Our ops, one module each (tflm_vit/ops/spec.py says what a module declares). Adding
an op: a module here, its entry in ALL, its C kernel and TFLM adapter (custom_ops/), and
the converter pattern that produces it (tflm_vit/converters/patterns.py, rewrites.py);
everything else iterates over ALL."""

from tflm_vit.ops import (attention, gelu, layernorm, linear, low_rank_linear, mlp,
                          patch_embed)
from tflm_vit.ops.spec import OVER_IMAGE_AT_LEAD, OVER_INPUT0, OpSpec

# In kind order (the kinds are the C enum's values).
ALL: tuple[OpSpec, ...] = tuple(m.SPEC for m in (layernorm, gelu, linear, low_rank_linear,
                                                  attention, mlp, patch_embed))
BY_CODE: dict[str, OpSpec] = {s.code: s for s in ALL}
CODES: tuple[str, ...] = tuple(BY_CODE)

__all__ = ["ALL", "BY_CODE", "CODES", "OVER_IMAGE_AT_LEAD", "OVER_INPUT0", "OpSpec"]
