"""Static export: one subnet -> a fully int8, batch-1 TFLite model that stock TFLM runs.

Route (verified on the pinned wheel, see README "Export"): a static Keras model of the
subnet -> `model.export(format="tf_saved_model")` with a fixed (1, H, W, C) signature
-> `TFLiteConverter.from_saved_model` with int8 builtins, int8 input and output, and a
representative dataset.

Op pattern of the result (the converter finds these sequences again; see
converters/patterns.py, which checks them):
  stem             CONV_2D (3x3, SAME, fused ReLU), only in subnets with a stem
  patch embedding  CONV_2D -> RESHAPE -> ADD(position embedding constant)
  LayerNorm        MEAN -> DEQUANTIZE -> NEG -> QUANTIZE -> SQUARED_DIFFERENCE -> MEAN
                   -> ADD(eps) -> RSQRT -> MUL -> MUL -> MUL -> ADD
  attention        FULLY_CONNECTED x3 (Q, K, V; each -> RESHAPE -> TRANSPOSE)
                   -> BATCH_MATMUL(Q, K^T) -> MUL(scale) -> SOFTMAX -> BATCH_MATMUL(., V)
                   -> TRANSPOSE -> RESHAPE -> FULLY_CONNECTED (output projection);
                   layout ops that move nothing (one head) are dropped by the converter
  linear           FULLY_CONNECTED (with bias)
  low-rank linear  FULLY_CONNECTED (no bias, out = rank) -> FULLY_CONNECTED (with bias)
  GELU             MUL(x, 1.702) -> LOGISTIC -> (RESHAPE) -> MUL(x, .)  = x*sigmoid(1.702x),
                   standing in for the exact GELU the supernet trains with (the wheel has
                   no GELU kernel)
  head             (LayerNorm) -> MEAN over tokens -> FULLY_CONNECTED
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from tflm_vit.config import SubnetConfig
from tflm_vit.errors import ExportError
from tflm_vit.fdcapture import capture_fd
from tflm_vit.tflite_model import ModelInfo, parse_model

MAX_RANK = 4  # TFLM rejects 5-D slices; every tensor stays at or under 4-D.


def prepare_images(images: np.ndarray, resolution: int) -> np.ndarray:
    """Float NHWC images resized to a subnet's input resolution (as the supernet does)."""
    import tensorflow as tf

    from tflm_vit.supernet.resize import resize_images
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ExportError(f"images must be NHWC (4-D), got shape {images.shape}")
    if images.shape[1] == images.shape[2] == resolution:
        return images
    return resize_images(tf.constant(images), resolution).numpy()


def keras_to_tflite(model, representative: np.ndarray) -> bytes:
    """Convert a batch-1 Keras model to a fully int8 TFLite model."""
    import tensorflow as tf
    shape = tuple(model.inputs[0].shape)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "saved_model")
        model.export(path, format="tf_saved_model",
                     input_signature=[tf.TensorSpec(shape, tf.float32)], verbose=False)
        conv = tf.lite.TFLiteConverter.from_saved_model(path)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8

        def rep():
            for x in representative:
                yield [x[np.newaxis].astype(np.float32)]

        conv.representative_dataset = rep
        with capture_fd(2):  # the converter's C++ progress lines
            return bytes(conv.convert())


def check_static_int8(info: ModelInfo) -> None:
    """The export guarantees: int8 in/out, batch 1, static shapes, <= 4-D, builtins only."""
    for idx in info.inputs + info.outputs:
        t = info.tensors[idx]
        if t.dtype != "INT8":
            raise ExportError(f"tensor '{t.name}' is {t.dtype}, expected INT8 input/output")
        if not t.shape or t.shape[0] != 1:
            raise ExportError(f"tensor '{t.name}' has shape {t.shape}, expected batch 1")
    for t in info.tensors:
        if len(t.shape) > MAX_RANK:
            raise ExportError(f"tensor '{t.name}' is {len(t.shape)}-D {t.shape}; TFLM "
                              f"supports at most {MAX_RANK}-D")
        if t.is_dynamic:
            raise ExportError(f"tensor '{t.name}' has a dynamic shape {t.shape_signature}")
    from tflm_vit.tflite_model import BUILTIN_NAMES
    builtins = set(BUILTIN_NAMES.values())
    for op in info.ops:
        if op.name not in builtins:
            raise ExportError(f"operator {op.index} is custom op '{op.name}'")


def export_tflite(supernet, config: SubnetConfig, representative_data: np.ndarray,
                  max_calibration: int = 100) -> bytes:
    """Bytes of a fully int8 TFLite model of `config`, calibrated on representative_data
    (float NHWC images in the training range, any resolution)."""
    from tflm_vit.supernet.subnet import build_subnet_model
    supernet.space.validate(config)
    rep = np.asarray(representative_data)
    if rep.ndim != 4 or len(rep) == 0:
        raise ExportError(f"representative_data must be a non-empty NHWC batch, got shape "
                          f"{rep.shape}")
    if rep.shape[-1] != supernet.space.in_channels:
        raise ExportError(f"representative_data has {rep.shape[-1]} channels, the supernet "
                          f"takes {supernet.space.in_channels}")
    rep = prepare_images(rep[:max_calibration], config.resolution)
    model = build_subnet_model(config, supernet.subnet_weights(config),
                               supernet.space.in_channels, gelu="sigmoid")
    data = keras_to_tflite(model, rep)
    check_static_int8(parse_model(data, "exported model"))
    return data


def float_subnet_model(supernet, config: SubnetConfig):
    """The float Keras model of a subnet (exact GELU): the reference an export is held to."""
    from tflm_vit.supernet.subnet import build_subnet_model
    return build_subnet_model(config, supernet.subnet_weights(config),
                              supernet.space.in_channels, gelu="exact")
