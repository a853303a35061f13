"""Running an int8 model in stock TFLM over float images, and comparing it with the
float Keras model it came from."""

from __future__ import annotations

import dataclasses

import numpy as np

from tflm_vit import runtime


def quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def run_int8(model, images: np.ndarray, interpreter=None) -> tuple[np.ndarray, float, int]:
    """Quantise float NHWC images with the model's input parameters, invoke TFLM per
    image. Returns (int8 outputs, output scale, output zero point)."""
    interp = interpreter or runtime.make_interpreter(model)[0]
    in_scale, in_zp = runtime.quantization(interp.get_input_details(0))
    out_scale, out_zp = runtime.quantization(interp.get_output_details(0))
    q = runtime.invoke(interp, quantize(images, in_scale, in_zp))
    return q, out_scale, out_zp


@dataclasses.dataclass
class Agreement:
    top1_agreement: float  # argmax(int8 TFLM) == argmax(float Keras)
    max_error_steps: int  # |int8 - quantize(float)| in output quantisation steps
    mean_error_steps: float
    int8_accuracy: float | None = None
    float_accuracy: float | None = None


def compare(float_logits: np.ndarray, q: np.ndarray, scale: float, zero_point: int,
            labels: np.ndarray | None = None) -> Agreement:
    ref = quantize(float_logits, scale, zero_point).astype(np.int32)
    err = np.abs(q.astype(np.int32) - ref)
    top_q, top_f = np.argmax(q, -1), np.argmax(float_logits, -1)
    acc = (lambda p: float(np.mean(p == labels))) if labels is not None else (lambda p: None)
    return Agreement(float(np.mean(top_q == top_f)), int(err.max()), float(err.mean()),
                     acc(top_q), acc(top_f))
