"""A timm ViT as a full-int8 TFLite model, made the way a PyTorch user makes one: timm's
VisionTransformer (pretrained=False: nothing is downloaded), optionally trained a few
epochs, converted with litert-torch to a float TFLite model, then quantised by
ai-edge-quantizer's static recipe (int8 weights and activations, int8 input and
output) calibrated on given images.

This file runs in an environment with torch, timm, litert-torch and ai-edge-quantizer,
not in tflm-vit's own (they pin their own torch and bring no TensorFlow; see
tflm_vit.model_zoo.timm_vit), so it imports nothing from tflm_vit:

    TORCH_PYTHON tflm_vit/torch_export.py --data data.npz --out vit.tflite [--epochs 1]

data.npz holds `calibration` (N, H, W, C float32) and, to train, `x_train` / `y_train`.
The model takes PyTorch's NCHW layout; its TFLite input is (1, C, H, W).
"""

from __future__ import annotations

import argparse
import json
import sys


def build(image: int, channels: int, patch: int, dim: int, depth: int, heads: int,
          mlp_ratio: float, classes: int, seed: int):
    import timm
    import torch
    torch.manual_seed(seed)
    return timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=image, patch_size=patch,
        in_chans=channels, num_classes=classes, embed_dim=dim, depth=depth,
        num_heads=heads, mlp_ratio=mlp_ratio)


def train(model, x, y, epochs: int, seed: int, batch: int = 128):
    """AdamW, cross-entropy: enough that the logits mean something."""
    import numpy as np
    import torch
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    x, y = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    model.train()
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // batch)):
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def to_int8_tflite(model, calibration) -> bytes:
    """litert-torch (float) -> ai-edge-quantizer static int8 (weights and activations)."""
    import litert_torch
    import numpy as np
    import torch
    from ai_edge_litert import interpreter as tfl
    from ai_edge_quantizer import quantizer, recipe
    sample = (torch.from_numpy(calibration[:1]),)
    float_model = litert_torch.convert(model.eval(), sample).model_content()
    signatures = tfl.Interpreter(model_content=float_model).get_signature_list()
    key = next(iter(signatures))
    name = signatures[key]["inputs"][0]
    q = quantizer.Quantizer(float_model)
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    result = q.calibrate({key: [{name: np.ascontiguousarray(c[None])} for c in calibration]})
    return bytes(q.quantize(result).quantized_model)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="npz: calibration [, x_train, y_train]")
    p.add_argument("--out", required=True)
    p.add_argument("--arch", default="{}", help="JSON: build()'s keyword arguments")
    p.add_argument("--epochs", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    import numpy as np
    with np.load(a.data) as f:
        data = {k: f[k] for k in f.files}
    nchw = lambda x: np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32)  # noqa: E731
    calibration = nchw(data["calibration"])
    _, channels, image, _ = calibration.shape
    arch = dict(image=image, channels=channels, patch=4, dim=64, depth=2, heads=4,
                mlp_ratio=2.0, classes=10, seed=a.seed)
    arch.update(json.loads(a.arch))
    model = build(**arch)
    if a.epochs:
        model = train(model, nchw(data["x_train"]), data["y_train"], a.epochs, a.seed)
    data = to_int8_tflite(model, calibration)  # before the file: never half-written
    with open(a.out, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
