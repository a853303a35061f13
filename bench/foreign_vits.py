"""Foreign ViTs: ViTs written the usual ways, not by our exporter, through `convert` and
`plan`, in TFLM.

The keras.io-style ViT (tflm_vit.model_zoo.keras_io_vit: 28 px Fashion-MNIST images,
patch 4 = 49 tokens, width 64, 2 blocks of keras.layers.MultiHeadAttention with 4 heads
and a Dense(activation=gelu) MLP) in 8 variants: Conv2D or extract_patches + Dense patch
embedding x mean pooling or a class token x exact or tanh GELU; each trained for one
epoch on Fashion-MNIST (so its logits mean something), calibrated on 200 training images
and converted to full int8 with TFLiteConverter at batch 1. Then the same model through
`from_keras_model` with a free batch (the route TFLite's docs teach; `convert` makes it
static at batch 1 first), keras_hub's ViTBackbone (same size, class token) where
keras_hub is installed (see tflm_vit.model_zoo.keras_hub_vit for an install that keeps
this environment's TensorFlow), and timm's ViT (the same size, trained one epoch in
PyTorch) through litert-torch and ai-edge-quantizer where a torch environment is given
($TFLM_VIT_TORCH_PYTHON; tflm_vit.model_zoo.timm_vit).

Per model: our ops it was converted to and the stock ops left (with the converter's
reason), the arena TFLM records in the wheel for the stock model and for the converted
+ planned one, the converted model's logits against the stock model's in TFLM on the
first IMAGES test images (max LSB, top-1 agreement), the int8 models' test top-1 on
them, and the planned model run on the emulated Cortex-M7 (CMSIS-NN build) in exactly
the arena `plan` gives, its output equal to the wheel's. The wheel has no GELU kernel
(tflite-micro #3218): "stock" is the stock model with its builtin GELU ops run as our
TV_GELU lookup table, float-then-quantise like TFLite's own GELU kernel.

Exits non-zero when a Keras variant leaves an op the README does not list as staying
stock (residual and position ADD, MEAN, the class token's CONCATENATION and
STRIDED_SLICE, extract_patches' one-hot CONV_2D), when the converted model agrees with
stock on less than 97 % of the images, or the M7 run fails or differs from the wheel.

Writes bench/results/foreign_vits.json ({"commit", "command", "seconds", "images",
"rows": [{"name", "source", "converted_ops", "left_ops", "stock_arena",
"planned_arena", "max_lsb_vs_stock", "top1_agreement", "runs_on_m7", ...}],
"problems"}) and foreign_vits.md.

Run: .venv/bin/python bench/foreign_vits.py [--only NAME ...] [--no-firmware]
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import re
import sys
import tempfile
import time

import numpy as np

from tflm_vit import model_zoo, runtime
from tflm_vit.converters import convert as conv
from tflm_vit.converters import model_io as mio
from tflm_vit.converters import static_batch
from tflm_vit.data import load_fashion_mnist
from tflm_vit.errors import TflmVitError
from tflm_vit.export import keras_to_tflite
from tflm_vit.memory import plan_model
from tflm_vit.tflite_model import load_model
from tflm_vit.twins.fixed_point import quantize

REPO = pathlib.Path(__file__).resolve().parents[1]
from provenance import model_arguments, publish, stamp  # noqa: E402  (bench/provenance.py)

from tflm_vit.firmware import qemu  # noqa: E402

IMAGES = 2000  # test images for the agreement and accuracy columns
# What the README lists as staying stock ops after `convert`.
STAYS_STOCK = {"ADD", "MEAN", "CONCATENATION", "STRIDED_SLICE", "CONV_2D", "RESHAPE"}
# PyTorch's route (timm): the input's NCHW -> NHWC RESHAPE, the QUANTIZE to the class
# token's scale, the class token's CONCATENATION and SLICE, the ADDs. (The final
# LayerNorm's trained affine, a MUL and an ADD by constants left outside it, is taken in.)
TORCH_STAYS_STOCK = {"ADD", "CONCATENATION", "SLICE", "QUANTIZE", "RESHAPE"}
MIN_AGREEMENT = 0.97
TIMM_FIXTURE = REPO / "tests" / "data" / "timm_vit_tiny_int8.tflite"


def variants() -> dict[str, dict]:
    out = {}
    for patch in ("conv", "extract_patches"):
        for pool in ("mean", "class_token"):
            for gelu in ("exact", "tanh"):
                out[f"keras_io_{patch}_{pool}_{gelu}"] = dict(
                    patch_embedding=patch, pool=pool, gelu=gelu)
    return out


def _train(model, data, epochs: int = 1):
    import keras
    keras.utils.set_random_seed(0)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(data.x_train, data.y_train, batch_size=128, epochs=epochs, verbose=0)
    return model


def keras_model(kw: dict, data, batch_size=1):
    import keras
    keras.utils.set_random_seed(0)
    model = model_zoo.keras_io_vit(**kw, batch_size=None)
    _train(model, data)
    return model if batch_size is None else _batch_one(model)


def _batch_one(model):
    import keras
    inp = keras.Input(tuple(model.inputs[0].shape[1:]), batch_size=1)
    return keras.Model(inp, model(inp))


def from_keras_model(model, calibration: np.ndarray) -> bytes:
    """The TFLite docs' route: TFLiteConverter.from_keras_model on a model with a free
    batch, full int8."""
    import tensorflow as tf
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = c.inference_output_type = tf.int8
    c.representative_dataset = lambda: ([x[None]] for x in calibration)
    return c.convert()


def _quantize_images(data_bytes: bytes, images: np.ndarray) -> np.ndarray:
    """Float images as the model's int8 input (its input tensor's quantisation, read off
    the flatbuffer: a model the wheel cannot load still gets its images)."""
    tensor = mio.read(data_bytes).subgraphs[0].inputs[0]
    s, z = mio.quant(tensor, "model input")
    x = quantize(images, s, z)
    shape = tuple(int(d) for d in tensor.shape[1:])
    if shape != x.shape[1:] and shape == (x.shape[3], x.shape[1], x.shape[2]):
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # PyTorch's NCHW
    return x


def static_model(stock: bytes) -> bytes:
    editable = mio.read(stock)
    if not static_batch.is_dynamic(editable):
        return stock
    static_batch.make_static(editable)
    return mio.build(editable)


def m7_run(model: bytes, arena: int, x: np.ndarray, work: pathlib.Path) -> tuple[bool, str]:
    """(ran and printed its output, the output hex) on the emulated M7, CMSIS-NN build."""
    build = qemu.build("cortex-m7", "cmsis_nn")
    (work / "model.tflite").write_bytes(model)
    (work / "in.bin").write_bytes(x.tobytes())
    r = qemu.run(build.model_runner, "cortex-m7", [work / "model.tflite", work / "in.bin", arena])
    out = re.search(r"output ([0-9a-f]+)", r.output)
    ok = r.returncode == 0 and "TFLM_VIT_RUN_PASS" in r.output and out is not None
    return ok, (out.group(1) if out else r.output[-300:])


def row(name: str, source: str, stock: bytes, data, firmware: bool) -> dict:
    base = {"name": name, "source": source}
    try:
        result = conv.convert(stock, keep_unmapped=True,
                              samples=_quantize_images(stock, data.x_train[:8]))
        stock = static_model(stock)  # what convert took in: a free batch fixed at 1
        _, info = load_model(stock)
        baseline, baseline_is = conv.wheel_baseline(stock, info, conv.Settings())
    except TflmVitError as e:
        return {**base, "converted_ops": {}, "left_ops": [f"refused: {e}"],
                "stock_arena": None, "planned_arena": None, "max_lsb_vs_stock": None,
                "top1_agreement": None, "runs_on_m7": None}
    planned = plan_model(result.model, target="wheel")
    x = _quantize_images(stock, data.x_test[:IMAGES])
    y_stock = runtime.invoke(baseline, x).astype(np.int32).reshape(len(x), -1)
    y_ours = runtime.invoke(planned.model, x).astype(np.int32).reshape(len(x), -1)
    labels = data.y_test[:IMAGES]
    left = sorted({n for lft in result.left for n in lft.names})
    out = {**base, "converted_ops": result.op_counts(), "left_ops": left,
           "notes": result.notes,
           "left_reasons": sorted({f"{','.join(lft.names)}: {lft.reason}"
                                   for lft in result.left}),
           "stock_is": baseline_is,
           "stock_arena": runtime.allocations(baseline).total,
           "planned_arena": runtime.allocations(planned.model).total,
           "arena_to_give": planned.arena_size,
           "max_lsb_vs_stock": int(np.abs(y_ours - y_stock).max()),
           "top1_agreement": float((y_ours.argmax(1) == y_stock.argmax(1)).mean()),
           "stock_top1": float((y_stock.argmax(1) == labels).mean()),
           "converted_top1": float((y_ours.argmax(1) == labels).mean()),
           "runs_on_m7": None}
    if firmware:
        try:
            m7 = plan_model(result.model, target="cortex-m-cmsis-nn")
            m7.arena_size  # noqa: B018  (computed when asked: it may refuse)
        except TflmVitError as e:  # an op whose on-target arena the memory model lacks
            out["m7_not_run"] = str(e).split(", so")[0]
            return out
        wheel_out = runtime.invoke(m7.model, x[:1]).tobytes().hex()
        with tempfile.TemporaryDirectory() as d:
            ok, got = m7_run(m7.model, m7.arena_size, x[:1], pathlib.Path(d))
        out["runs_on_m7"] = ok and got == wheel_out
        out["m7_arena_to_give"] = m7.arena_size
    return out


def not_installed_row(name: str, module: str, why: str | None = None) -> dict:
    why = why or f"{module} is not installed (pip install {module})"
    return {"name": name, "source": module, "converted_ops": {},
            "left_ops": [f"not run: {why}"],
            "stock_arena": None, "planned_arena": None, "max_lsb_vs_stock": None,
            "top1_agreement": None, "runs_on_m7": None}


def problems(rows: list[dict]) -> list[str]:
    bad = []
    for r in rows:
        if r["converted_ops"] == {} and r["left_ops"][0].startswith("not run"):
            continue
        # every route converts whole: what is left are the ops the README lists
        stays = STAYS_STOCK if r["source"].startswith("keras") else TORCH_STAYS_STOCK
        extra = sorted(set(r["left_ops"]) - stays)
        if extra:
            bad.append(f"{r['name']}: left {extra}, not ops the README lists as staying "
                       "stock")
        if not r["converted_ops"].get("TV_ATTENTION"):
            bad.append(f"{r['name']}: attention not converted")
        if r["top1_agreement"] is not None and r["top1_agreement"] < MIN_AGREEMENT:
            bad.append(f"{r['name']}: top-1 agreement with stock {r['top1_agreement']:.3f} "
                       f"< {MIN_AGREEMENT}")
        if r["runs_on_m7"] is False:
            bad.append(f"{r['name']}: the planned model fails on the emulated M7 or differs "
                       "from the wheel")
        if r["planned_arena"] is not None and r["planned_arena"] > r["stock_arena"]:
            bad.append(f"{r['name']}: converted + planned arena {r['planned_arena']} above "
                       f"stock {r['stock_arena']}")
    return bad


def write_table(doc: dict, path: pathlib.Path) -> None:
    def n(v):
        return "–" if v is None else f"{v:,}"

    lines = ["# Foreign ViTs through `convert` and `plan`\n",
             f"commit {doc['commit']}; `{doc['command']}`; {doc['seconds']:.0f} s on this "
             f"machine (each Keras model trained one epoch on Fashion-MNIST first)\n",
             f"Logits of the converted + planned model against the stock int8 model, both in "
             f"TFLM (the wheel), on the first {doc['images']:,} Fashion-MNIST test images; "
             "\"stock\" runs its builtin GELU as our table op, the wheel having no GELU "
             "kernel. Arenas are what TFLM records in the wheel; M7: the planned model on "
             "the emulated Cortex-M7 (CMSIS-NN build) in exactly the arena `plan` gives, "
             "output equal to the wheel's.\n",
             "| model | our ops | left stock | stock arena | converted + planned | saved | "
             "max LSB vs stock | top-1 agreement | top-1 stock / ours | M7 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        ops = ", ".join(f"{k.removeprefix('TV_')} {v}" for k, v in sorted(r["converted_ops"].items()))
        saved = (f"{1 - r['planned_arena'] / r['stock_arena']:.0%}"
                 if r["planned_arena"] is not None else "–")
        acc = (f"{r['stock_top1']:.3f} / {r['converted_top1']:.3f}"
               if r.get("stock_top1") is not None else "–")
        agree = "–" if r["top1_agreement"] is None else f"{r['top1_agreement']:.3f}"
        m7 = {None: "–", True: "yes", False: "NO"}[r["runs_on_m7"]]
        if r.get("m7_not_run"):
            m7 = f"not run: {r['m7_not_run']}"
        lines.append(f"| {r['name']} | {ops or '–'} | {', '.join(r['left_ops']) or '–'} | "
                     f"{n(r['stock_arena'])} | {n(r['planned_arena'])} | {saved} | "
                     f"{n(r['max_lsb_vs_stock'])} | {agree} | {acc} | {m7} |")
    lines.append("\nWhat stays stock and why: the residual and position-embedding ADDs and "
                 "the MEAN over tokens need no custom op; a class token's CONCATENATION and "
                 "STRIDED_SLICE are stock ops; `extract_patches` becomes a one-hot CONV_2D "
                 "that stays stock (its Dense is converted). A `from_keras_model` export "
                 "keeps its batch free (SHAPE/GATHER/REDUCE_PROD/PACK chains that TFLM "
                 "cannot run): `convert` first makes it static at batch 1 "
                 "(converters/static_batch.py), so its stock row is that static model. "
                 "timm's ViT (PyTorch, exported with litert-torch and quantised by "
                 "ai-edge-quantizer, trained one epoch in PyTorch): its LayerNorms, "
                 "attention (its fused qkv projection split first: converters/split_qkv.py), "
                 "linears and MLPs convert, and its patch embedding (a DEPTHWISE_CONV_2D over "
                 "the one channel between NCHW transposes, made CONV_2D and one RESHAPE "
                 "first, bit for bit: converters/one_channel_depthwise.py, "
                 "converters/layout_chains.py); what stays stock is the input's NCHW -> NHWC "
                 "RESHAPE, the QUANTIZE to the class token's scale, the class token's "
                 "CONCATENATION and SLICE and the ADDs (its final LayerNorm's trained affine, "
                 "a MUL and an ADD by constants the class token's SLICE keeps from the head, "
                 "is taken into that LayerNorm).")
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = model_arguments(__doc__, "skip the emulated M7 runs")
    parser.add_argument("--table", action="store_true",
                        help="write foreign_vits.md again from the committed foreign_vits.json "
                             "(its text, nothing measured)")
    args = parser.parse_args(argv)
    if args.table:
        doc = json.loads((REPO / "bench" / "results" / "foreign_vits.json").read_text())
        write_table(doc, REPO / "bench" / "results" / "foreign_vits.md")
        return 0
    t0 = time.monotonic()
    data = load_fashion_mnist()
    calibration = data.x_train[:200]
    rows = []
    for name, kw in variants().items():
        if args.only and name not in args.only:
            continue
        stock = keras_to_tflite(keras_model(kw, data), calibration)
        rows.append(row(name, "keras", stock, data, not args.no_firmware))
    if not args.only or "from_keras_model" in args.only:
        model = keras_model(variants()["keras_io_conv_mean_exact"], data, batch_size=None)
        rows.append(row("from_keras_model", "keras (free batch)",
                        from_keras_model(model, calibration), data, not args.no_firmware))
    if not args.only or "keras_hub_vit" in args.only:
        if importlib.util.find_spec("keras_hub") is None:
            rows.append(not_installed_row("keras_hub_vit", "keras_hub"))
        else:
            model = _train(model_zoo.keras_hub_vit(batch_size=None), data)
            rows.append(row("keras_hub_vit", "keras_hub",
                            keras_to_tflite(_batch_one(model), calibration), data,
                            not args.no_firmware))
    fixture_ops = None
    if not args.only or "timm_vit" in args.only:
        why = model_zoo.torch_missing()
        if why:
            rows.append(not_installed_row("timm_vit", "timm + litert-torch", why))
        else:  # the same size, trained as long, in PyTorch
            stock = model_zoo.timm_vit(calibration, data.x_train, data.y_train, epochs=1,
                                       patch=4, dim=64, depth=2, heads=4, mlp_ratio=2.0)
            rows.append(row("timm_vit", "timm + litert-torch", stock, data,
                            not args.no_firmware))
            # The tests' committed timm model, remade the way tests/data/README.md says:
            # tests/test_foreign_vits.py holds the committed file to what this made.
            fixture_ops = model_zoo.op_signature(model_zoo.timm_tiny())
    doc = {**stamp("foreign_vits.py", argv), "seconds": time.monotonic() - t0,
           "images": IMAGES, "rows": rows, "timm_fixture_ops": fixture_ops}
    doc["problems"] = problems(rows)
    committed = model_zoo.op_signature(TIMM_FIXTURE.read_bytes())
    if fixture_ops is not None and fixture_ops != committed:
        doc["problems"].append(f"{TIMM_FIXTURE.relative_to(REPO)} is not what the PyTorch "
                               "route makes today: remake it (tests/data/README.md)")
    return publish(doc, "foreign_vits", args.print_only or bool(args.only),
                   lambda: write_table(doc, REPO / "bench" / "results" / "foreign_vits.md"))


if __name__ == "__main__":
    sys.exit(main())
