"""Datasets: scikit-learn's handwritten digits (built in, nothing downloads) or a user's
folder of images with one sub-folder per class.

Images are float32 NHWC in [-1, 1] with 3 channels, at the resolution asked for;
the supernet resizes them to each subnet's own resolution.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from tflm_vit.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff")


@dataclasses.dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def resolution(self) -> int:
        return int(self.x_train.shape[1])


def _resize(images01: np.ndarray, resolution: int) -> np.ndarray:
    """[0, 1] NHWC -> [-1, 1] NHWC at resolution, bilinear."""
    import tensorflow as tf
    x = tf.image.resize(tf.constant(images01, tf.float32), [resolution, resolution],
                        method="bilinear").numpy()
    return np.clip(x, 0.0, 1.0) * 2.0 - 1.0


def _split(x, y, test_fraction, seed, name="the data"):
    """Stratified train/test split; DataError when a split could not hold every class."""
    import math

    from sklearn.model_selection import train_test_split
    n, k = len(y), len(np.unique(y))
    n_test = math.ceil(test_fraction * n)
    if n_test < k or n - n_test < k:
        raise DataError(f"{name}: {n} images in {k} classes are too few for a stratified "
                        f"{test_fraction:.0%} test split (each split needs an image of every "
                        f"class: at least {math.ceil(k / test_fraction)} images)")
    return train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)


def load_digits(resolution: int = 32, test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 digits, upscaled and replicated to RGB."""
    from sklearn.datasets import load_digits as sk_digits
    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., np.newaxis].repeat(3, axis=-1)
    x = _resize(x, resolution).astype(np.float32)
    y = d.target.astype(np.int32)
    x_tr, x_te, y_tr, y_te = _split(x, y, test_fraction, seed)
    return Dataset("digits", x_tr, y_tr, x_te, y_te, [str(i) for i in range(10)])


def load_image_folder(path: str, resolution: int = 32, test_fraction: float = 0.2,
                      seed: int = 0) -> Dataset:
    """A folder with one sub-folder per class, each holding images."""
    from PIL import Image, UnidentifiedImageError
    if not os.path.isdir(path):
        raise DataError(f"{path}: not a folder (expected one sub-folder per class)")
    classes = sorted(e.name for e in os.scandir(path) if e.is_dir())
    if len(classes) < 2:
        raise DataError(f"{path}: needs at least 2 class sub-folders, found {len(classes)}")
    images, labels = [], []
    for label, cls in enumerate(classes):
        files = sorted(f for f in os.listdir(os.path.join(path, cls))
                       if f.lower().endswith(IMAGE_SUFFIXES))
        if not files:
            raise DataError(f"{os.path.join(path, cls)}: class folder holds no images "
                            f"({', '.join(IMAGE_SUFFIXES)})")
        for f in files:
            fp = os.path.join(path, cls, f)
            try:
                with Image.open(fp) as im:
                    im = im.convert("RGB").resize((resolution, resolution), Image.BILINEAR)
                    images.append(np.asarray(im, np.float32) / 255.0)
            except (UnidentifiedImageError, OSError) as e:
                raise DataError(f"{fp}: cannot read image ({e})") from None
            labels.append(label)
    x = np.stack(images) * 2.0 - 1.0
    y = np.array(labels, np.int32)
    if min(np.bincount(y)) < 2:
        raise DataError(f"{path}: every class needs at least 2 images for a train/test split")
    x_tr, x_te, y_tr, y_te = _split(x.astype(np.float32), y, test_fraction, seed, path)
    return Dataset(os.path.basename(os.path.normpath(path)), x_tr, y_tr, x_te, y_te, classes)


def load_dataset(source: str | None, resolution: int, seed: int = 0) -> Dataset:
    """'digits' (or None) for the built-in data, else a folder path."""
    if source in (None, "", "digits"):
        return load_digits(resolution, seed=seed)
    return load_image_folder(source, resolution, seed=seed)
