"""tflm_vit.converters: finds the export's op patterns and (next) rewrites them to our ops.

Installed as `tflm_vit.converters` (see pyproject.toml); the folder sits at the top of
the repository per the design card.
"""

from tflm_vit.converters.patterns import Match, count_patterns, find_patterns, unmatched_ops

__all__ = ["Match", "count_patterns", "find_patterns", "unmatched_ops"]
