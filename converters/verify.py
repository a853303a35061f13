"""Verifying a conversion in the tflite-micro wheel: the old and new model run on the
same inputs with every tensor preserved; each new op's output must equal its NumPy
reference computed from the op's own inputs in the interpreter (bit for bit), and
each rewrite's output is compared with the stock model's tensor at the same place."""

from __future__ import annotations

import numpy as np

from tflm_vit import runtime
from tflm_vit.errors import ConversionError


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
            last = g.new_ops[-1]
            stock = tensor_value(old_interp, last.stock_output).astype(int).reshape(-1)
            new = tensor_value(new_interp, last.output._index).astype(int).reshape(-1)
            worst[id(g)] = max(worst[id(g)], int(np.abs(stock - new).max()))
    for g in result.rewritten:
        g.verified = f"bit-exact on {len(images)} inputs"
        g.stock_max_lsb = worst[id(g)]
    result.top1_agreement_with_stock = agree / len(images)
    result.samples = len(images)


OP_KIND = {"TV_LAYERNORM": "layernorm", "TV_GELU": "gelu", "TV_LINEAR": "linear",
           "TV_LOW_RANK_LINEAR": "low_rank_linear", "TV_ATTENTION": "attention",
           "TV_MLP": "mlp", "TV_PATCH_EMBED": "patch_embed"}


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
