"""TV_PATCH_EMBED: the patch embedding decomposed into bands of patches (MCUFormer),
bit-exact with the stock CONV_2D it replaces (twin: tflm_vit/twins/patch_embed.py;
kernel: custom_ops/kernels/tv_patch_embed.c). Its tokens may start `output_lead` bytes
before the image they overwrite, when the converter found such a layout safe."""

from tflm_vit.ops.spec import OVER_IMAGE_AT_LEAD, OpSpec


def _features(f: dict, out: int) -> tuple[int, int]:
    tokens = (f["height"] // f["patch"]) * (f["width"] // f["patch"])
    return tokens * f["patch"] ** 2 * f["in_channels"] * f["out_channels"], out


SPEC = OpSpec(
    code="TV_PATCH_EMBED", kind=7,
    fields=("height", "width", "in_channels", "patch", "out_channels", "first_band_split",
            "output_lead", "input_offset", "output_offset"),
    overwrite=OVER_IMAGE_AT_LEAD, stock_lsb_bound=0, exact_with_stock=True,
    error_kind="patch_embed", features=_features, twin="tflm_vit.twins.patch_embed")
