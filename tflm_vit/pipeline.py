"""The deployment pipeline, in one place: a subnet of a supernet -> a stock int8 TFLite
model -> our ops (converted, verified inside TFLM) -> an arena plan (token overwriting)
-> accuracy and arena measured in TFLM.

The CLI's `demo` and `export` and the search all call these functions; nothing else
strings the steps together.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tflm_vit.config import SubnetConfig

VERIFY_IMAGES = 8  # real images a conversion is verified on
CALIBRATION_IMAGES = 200  # training images the int8 export calibrates its ranges on


@dataclasses.dataclass
class Deployment:
    """One subnet through the pipeline."""
    config: SubnetConfig
    stock: bytes  # the exported int8 model stock TFLM runs
    conversion: object  # converters.convert.Conversion
    planned: object  # memory.PlannedModel: the converted model with its arena plan

    @property
    def model(self) -> bytes:
        """The converted and planned model: what a firmware ships."""
        return self.planned.model

    @property
    def arena_size(self) -> int:
        """The arena to give TFLM on the target the plan was made for."""
        return self.planned.arena_size

    @property
    def flash(self) -> int:
        """Bytes of the serialized model (weights, graph, plan)."""
        return len(self.planned.model)


@dataclasses.dataclass
class Accuracy:
    """A deployment run over labelled images, in TFLM and in float Keras."""
    images: int
    float_top1: float  # the supernet's float subnet (exact GELU)
    stock_top1: float | None  # the stock int8 model in TFLM (None when not run)
    top1: float  # the converted and planned model in TFLM, in exactly its arena
    agreement: float  # argmax of the deployed model == argmax of float
    arena_measured: int  # what TFLM's recording allocator reports for the deployed model


def quantized_inputs(model: bytes, images: np.ndarray) -> np.ndarray:
    """Float NHWC images as the model's int8 input."""
    from tflm_vit import evaluate, runtime
    scale, zp = runtime.quantization(runtime.make_interpreter(model)[0].get_input_details(0))
    return evaluate.quantize(images, scale, zp)


def export(net, config: SubnetConfig, calibration: np.ndarray) -> bytes:
    """The stock int8 model of `config` (export.export_tflite)."""
    from tflm_vit.export import export_tflite
    return export_tflite(net, config, calibration)


def convert_and_plan(stock: bytes, samples: np.ndarray | None = None, verify: bool = True,
                     target: str = "wheel", budget: int | None = None, **convert_options):
    """(Conversion, PlannedModel): `stock` on our ops, verified on `samples` (int8 inputs;
    converters/verify.py bounds every op against its twin and the stock ops it
    replaces), then planned for `target`; PlanError when the plan exceeds `budget`."""
    from tflm_vit.converters.convert import convert
    from tflm_vit.memory import plan_model
    conversion = convert(stock, verify=verify, samples=samples, **convert_options)
    return conversion, plan_model(conversion.model, budget=budget, target=target)


def deploy(net, config: SubnetConfig, calibration: np.ndarray,
           verify_images: np.ndarray | None = None, verify: bool = True,
           target: str = "wheel", budget: int | None = None) -> Deployment:
    """Export, convert (verified on the first VERIFY_IMAGES of `verify_images`, float
    NHWC at any resolution; seeded random images when None) and plan one subnet."""
    from tflm_vit.export import prepare_images
    stock = export(net, config, calibration)
    samples = None
    if verify and verify_images is not None:
        x = prepare_images(verify_images[:VERIFY_IMAGES], config.resolution)
        samples = quantized_inputs(stock, x)
    conversion, planned = convert_and_plan(stock, samples, verify, target, budget)
    return Deployment(config, stock, conversion, planned)


def measure(deployment: Deployment, net, images: np.ndarray, labels: np.ndarray,
            run_stock: bool = True) -> Accuracy:
    """Top-1 of the deployed model in TFLM (in exactly the arena the wheel needs for its
    plan), of the stock model and of the float subnet, on float NHWC images."""
    from tflm_vit import evaluate, runtime
    from tflm_vit.export import prepare_images
    from tflm_vit.memory import predict
    config = deployment.config
    x = prepare_images(images, config.resolution)
    float_logits = net.predict_subnet(x, config)  # batched; the same function as the
    # batch-1 Keras subnet the export is built from (tests/test_supernet.py holds them equal)
    arena = predict(deployment.model, "wheel").arena_to_give
    interp, _ = runtime.make_interpreter(deployment.model, arena_size=arena)
    q, scale, zp = evaluate.run_int8(deployment.model, x, interpreter=interp)
    ours = evaluate.compare(float_logits, q, scale, zp, labels)
    stock_top1 = None
    if run_stock:
        qs, s_scale, s_zp = evaluate.run_int8(deployment.stock, x)
        stock_top1 = evaluate.compare(float_logits, qs, s_scale, s_zp, labels).int8_accuracy
    return Accuracy(len(x), ours.float_accuracy, stock_top1, ours.int8_accuracy,
                    ours.top1_agreement, runtime.allocations(deployment.model).total)


def quantisation_loss(deployment: Deployment, net, images: np.ndarray,
                      labels: np.ndarray) -> dict:
    """Float top-1 against the deployed int8 model's in TFLM on held-out images (the
    validation split: what the search may look at), and the loss between them."""
    a = measure(deployment, net, images, labels, run_stock=False)
    return {"images": a.images, "float_top1": a.float_top1, "int8_top1": a.top1,
            "loss": a.float_top1 - a.top1}
