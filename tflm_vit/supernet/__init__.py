"""Weight-sharing ViT supernet (Keras 3, TensorFlow backend) and its static subnets."""

from tflm_vit.supernet.model import (ViTSupernet, encode_config, seeded_supernet,
                                     trained_shaped)
from tflm_vit.supernet.subnet import build_subnet_model

__all__ = ["ViTSupernet", "build_subnet_model", "encode_config", "seeded_supernet",
           "trained_shaped"]
