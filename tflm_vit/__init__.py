"""tflm-vit: Vision Transformers on microcontrollers, as a TensorFlow Lite Micro plugin.

Pipeline: supernet (Keras) -> export (static int8 .tflite) -> converters (our ops)
-> memory (model, planner, offline plan) -> the .tflite a user ships.
"""

import os as _os

# TensorFlow's C++ start-up chatter hides what users need to read; errors still show.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# oneDNN's graph rewrites announce themselves at start-up and reorder float sums;
# off, float results are reproducible run to run.
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__version__ = "0.1.0"
