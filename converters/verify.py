"""Verifying a conversion in the tflite-micro wheel: the old and new model run on the
same inputs with every tensor preserved; each new op's output must equal its NumPy
reference computed from the op's own inputs in the interpreter (bit for bit), and
each new op is compared with the stock ops it replaces: fed the stock model's own values
at its inputs (so no difference is carried in from upstream), its output may differ from
the stock model's at the same place only within the bound for its kind (STOCK_LSB_BOUND,
below). Pass real images (`samples`); without them four seeded random images are used."""

from __future__ import annotations

import numpy as np

from tflm_vit import ops, runtime
from tflm_vit.errors import ConversionError

# Largest |our op - the stock ops it replaces| (LSB) on identical inputs, per op.
# How far each new op may be from the stock ops it replaces, fed the same (stock) inputs.
# Linear maps and the patch embedding are bit-exact with TFLite's FULLY_CONNECTED and
# CONV_2D: 0 LSB. The others are exact integer versions of ops that stock computes
# through int8 intermediates (LayerNorm's int8 squared differences, variance and RSQRT;
# attention's int8 softmax probabilities; GELU as x*sigmoid(1.702x)), so stock itself is
# several LSB off the float op: such an op may differ from stock by stock's own distance
# from float-then-quantise plus at most STOCK_LSB_BOUND (our ops' own distance from it),
# element by element. Measured on real images: at most 1 LSB for every kind on subnets
# calibrated on the data (bench/results/fidelity.md); 2 for attention on R0 calibrated on
# noise and fed digits; the GELU approximation (--gelu shift) reaches 3.
# Each op of ours declares both (tflm_vit/ops: exact_with_stock, stock_lsb_bound).
EXACT_WITH_STOCK = frozenset(s.code for s in ops.ALL if s.exact_with_stock)
STOCK_LSB_BOUND = {s.code: s.stock_lsb_bound for s in ops.ALL}


def stock_excess(op, stock_args, stock_out) -> tuple[int, int]:
    """(max |op - stock|, max excess over stock's own distance from float) in LSB for one
    input; for the ops exact with stock the excess is the difference itself."""
    alone = np.asarray(op.reference(*stock_args)).astype(np.int64).reshape(-1)
    stock = np.asarray(stock_out).astype(np.int64).reshape(-1)
    diff = np.abs(alone - stock)
    if op.custom_code in EXACT_WITH_STOCK or op.float_reference is None:
        return int(diff.max()), int(diff.max())
    exact = np.asarray(op.float_reference(*stock_args)).astype(np.int64).reshape(-1)
    return int(diff.max()), int((diff - np.abs(stock - exact)).max())


def sample_inputs(model_bytes: bytes, count: int = 4, seed: int = 0) -> np.ndarray:
    interp, _ = runtime.make_interpreter(model_bytes)
    detail = interp.get_input_details(0)
    shape = tuple(detail["shape"][1:])
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (count,) + shape).astype(np.dtype(detail["dtype"]))


def tensor_value(interp, index: int) -> np.ndarray:
    """A tensor's value in a preserve-all-tensors interpreter."""
    return np.asarray(interp.GetTensor(index, 0)["tensor_data"])


def verify_conversion(old: bytes, result, samples=None) -> None:
    """Fills result.rewritten[*].verified / stock_max_lsb and the top-1 agreement;
    raises ConversionError naming the first op whose output is not bit-exact."""
    images = sample_inputs(old) if samples is None else np.asarray(samples)
    old_interp, _ = runtime.make_interpreter(old, preserve_all_tensors=True)
    new_interp, _ = runtime.make_interpreter(result.model, preserve_all_tensors=True)
    worst = {id(g): 0 for g in result.rewritten}
    isolated = {id(g): {} for g in result.rewritten}
    agree = 0
    for img in images:
        for interp in (old_interp, new_interp):
            interp.set_input(img[np.newaxis], 0)
            interp.invoke()
        agree += int(np.argmax(old_interp.get_output(0)) == np.argmax(new_interp.get_output(0)))
        for g in result.rewritten:
            for op in g.new_ops:
                args = [tensor_value(new_interp, op.inputs[k]._index) for k in op.activations]
                got = tensor_value(new_interp, op.output._index).reshape(-1)
                want = np.asarray(op.reference(*args)).reshape(-1)
                if got.shape != want.shape or not np.array_equal(got, want):
                    diff = np.abs(got.astype(int) - want.astype(int)).max() \
                        if got.shape == want.shape else "shape"
                    raise ConversionError(
                        f"{op.custom_code} (replacing ops {list(g.replaced)}) differs from its "
                        f"NumPy reference inside TFLM (max difference {diff})")
                if op.stock_inputs is not None and op.stock_output is not None:
                    stock_args = [tensor_value(old_interp, i) for i in op.stock_inputs]
                    stock_out = tensor_value(old_interp, op.stock_output)
                    if stock_out.size == np.asarray(op.reference(*stock_args)).size:
                        key = op.custom_code
                        d, excess = stock_excess(op, stock_args, stock_out)
                        isolated[id(g)][key] = max(isolated[id(g)].get(key, 0), d)
                        if excess > STOCK_LSB_BOUND[key]:
                            raise ConversionError(
                                f"{key} (replacing ops {list(g.replaced)}) differs from the "
                                f"stock ops it replaces, on the same inputs, by {excess} LSB "
                                f"more than stock differs from float, above its bound of "
                                f"{STOCK_LSB_BOUND[key]} LSB (converters/verify.py)")
            last = g.new_ops[-1]
            stock = tensor_value(old_interp, last.stock_output).astype(int).reshape(-1)
            new = tensor_value(new_interp, last.output._index).astype(int).reshape(-1)
            worst[id(g)] = max(worst[id(g)], int(np.abs(stock - new).max()))
    for g in result.rewritten:
        g.verified = f"bit-exact on {len(images)} inputs"
        g.stock_max_lsb = worst[id(g)]
        g.isolated_lsb = isolated[id(g)]
    result.top1_agreement_with_stock = agree / len(images)
    result.samples = len(images)


OP_KIND = {s.code: s.error_kind for s in ops.ALL}


def op_errors(result, images) -> dict[str, np.ndarray]:
    """|output - float-then-quantise| in LSB for every new op with a float reference,
    measured inside TFLM on `images` (each op fed its real inputs from the
    interpreter); pooled per op kind."""
    interp, _ = runtime.make_interpreter(result.model, preserve_all_tensors=True)
    errors: dict[str, list] = {}
    for img in np.asarray(images):
        interp.set_input(img[np.newaxis], 0)
        interp.invoke()
        for g in result.rewritten:
            for op in g.new_ops:
                if op.float_reference is None:
                    continue
                args = [tensor_value(interp, op.inputs[k]._index) for k in op.activations]
                got = tensor_value(interp, op.output._index).astype(np.int64).reshape(-1)
                want = np.asarray(op.float_reference(*args)).astype(np.int64).reshape(-1)
                errors.setdefault(OP_KIND[op.custom_code], []).append(np.abs(got - want))
    return {k: np.concatenate(v) for k, v in errors.items()}
