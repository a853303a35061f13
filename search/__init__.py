"""tflm_vit.search: the memory-constrained search over a supernet's SearchSpace.

Installed as `tflm_vit.search`. The search space itself (sampling, bounds,
mutation) lives in `tflm_vit.space`, upstream of both the supernet and the search;
this package re-exports it for search code.
"""

from tflm_vit.space import DEFAULT_SPACE, REFERENCE_CONFIGS, REFERENCE_SPACE, SearchSpace

__all__ = ["DEFAULT_SPACE", "REFERENCE_CONFIGS", "REFERENCE_SPACE", "SearchSpace"]
