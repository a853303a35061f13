"""Weight-sharing ViT supernet (Keras 3, TensorFlow backend) and its static subnets."""

from tflm_vit.supernet.model import ViTSupernet, encode_config
from tflm_vit.supernet.subnet import build_subnet_model

__all__ = ["ViTSupernet", "encode_config", "build_subnet_model"]
