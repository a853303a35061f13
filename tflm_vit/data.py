"""Datasets: scikit-learn's handwritten digits (built in, nothing downloads), Fashion-MNIST
(IDX files, as Debian's `dataset-fashion-mnist` installs them) or a user's folder of
images with one sub-folder per class.

Images are float32 NHWC in [-1, 1] at the resolution asked for (digits and folders with 3
channels, Fashion-MNIST with its one grey channel); the supernet resizes them to each
subnet's own resolution. A search picks by `validation_split` of the training set and
touches the test set only for its final report.
"""

from __future__ import annotations

import dataclasses
import gzip
import os

import numpy as np

from tflm_vit.errors import DataError
from tflm_vit.recipe import Augmentation, NO_AUGMENTATION

# Per-dataset augmentation (recipe.py): a shift of a few pixels keeps any class; a mirror
# keeps a garment's, not a digit's (a 2 mirrored is no digit). A folder of photos is
# padded with grey (0.0 in [-1, 1]), the grey datasets with their black background.
DIGITS_AUGMENTATION = Augmentation(translate=2, hflip=False)
IDX_AUGMENTATION = Augmentation(translate=2, hflip=False)
FASHION_MNIST_AUGMENTATION = Augmentation(translate=2, hflip=True)
FOLDER_AUGMENTATION = Augmentation(translate=2, hflip=False, fill=0.0)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff")


@dataclasses.dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    # What its images tolerate in training (tflm_vit/recipe.py); none unless known.
    augmentation: Augmentation = NO_AUGMENTATION

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def resolution(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[-1])


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
    return Dataset("digits", x_tr, y_tr, x_te, y_te, [str(i) for i in range(10)],
                   DIGITS_AUGMENTATION)


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
    return Dataset(os.path.basename(os.path.normpath(path)), x_tr, y_tr, x_te, y_te, classes,
                   FOLDER_AUGMENTATION)


# Fashion-MNIST as Debian's dataset-fashion-mnist installs it, and the four files' names.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot"]
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


def read_idx(path: str) -> np.ndarray:
    """One IDX file (gzip or plain): magic 0 0 <dtype> <ndim>, ndim big-endian uint32
    dimensions, then the data. DataError naming the file for anything else."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    ndim, dtype = raw[3], np.dtype(_IDX_DTYPES[raw[2]])
    dims = np.frombuffer(raw, ">u4", ndim, 4).astype(np.int64)
    n, start = int(np.prod(dims)), 4 + 4 * ndim
    if len(raw) != start + n * dtype.itemsize:
        raise DataError(f"{path}: {len(raw) - start} data bytes, the header's shape "
                        f"{tuple(dims)} needs {n * dtype.itemsize}")
    return np.frombuffer(raw, dtype, n, start).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_file(folder: str, stem: str) -> str:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz",
                 stem.replace("-idx", ".idx")):
        if os.path.isfile(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise DataError(f"{folder}: no {stem}[.gz] (an IDX dataset folder holds "
                    f"{', '.join(IDX_FILES.values())}, each .gz or plain)")


def is_idx_folder(path: str) -> bool:
    return os.path.isdir(path) and any(
        f.startswith(IDX_FILES["x_train"]) for f in os.listdir(path))


def load_idx_folder(folder: str, resolution: int | None = 28, name: str | None = None,
                    class_names: list[str] | None = None,
                    augmentation: Augmentation = IDX_AUGMENTATION) -> Dataset:
    """An MNIST-style IDX dataset: its own train and test split, grey images (N, H, W)
    as one channel, labels 0..K-1."""
    arrays = {k: read_idx(_idx_file(folder, stem)) for k, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{folder}: {split} images {x.shape} and labels {y.shape} do not "
                            "pair up (expected (N, H, W) images and N labels)")
    k = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    if len(np.unique(arrays["y_train"])) < 2:
        raise DataError(f"{folder}: the training labels hold {len(np.unique(arrays['y_train']))}"
                        " class; a classifier needs at least 2")
    if arrays["y_train"].min() < 0 or arrays["y_test"].min() < 0:
        raise DataError(f"{folder}: labels must be 0..K-1, found a negative one")

    if resolution is None:  # the files' own size
        if arrays["x_train"].shape[1] != arrays["x_train"].shape[2]:
            raise DataError(f"{folder}: images are {arrays['x_train'].shape[1]} x "
                            f"{arrays['x_train'].shape[2]}; give a square resolution")
        resolution = int(arrays["x_train"].shape[1])

    def images(x):
        x01 = (x.astype(np.float32) / 255.0)[..., np.newaxis]
        if x.shape[1:] == (resolution, resolution):
            return x01 * 2.0 - 1.0
        return _resize(x01, resolution).astype(np.float32)

    names = class_names if class_names and len(class_names) == k else [str(i) for i in range(k)]
    return Dataset(name or os.path.basename(os.path.normpath(folder)),
                   images(arrays["x_train"]), arrays["y_train"].astype(np.int32),
                   images(arrays["x_test"]), arrays["y_test"].astype(np.int32), names,
                   augmentation)


def load_fashion_mnist(resolution: int | None = 28, folder: str | None = None) -> Dataset:
    """Fashion-MNIST (60,000 train / 10,000 test 28x28 grey images, 10 classes) from
    `folder` (default: where Debian installs it)."""
    folder = folder or FASHION_MNIST_DIR
    if not os.path.isdir(folder):
        raise DataError(f"Fashion-MNIST is not installed ({folder} missing): run `apt-get "
                        "install dataset-fashion-mnist` (Debian), or give --data a folder "
                        f"holding its four IDX files ({', '.join(IDX_FILES.values())})")
    return load_idx_folder(folder, resolution, "fashion-mnist", FASHION_MNIST_CLASSES,
                           FASHION_MNIST_AUGMENTATION)


def validation_split(data: Dataset, fraction: float = 0.1, seed: int = 0
                     ) -> tuple[Dataset, Dataset]:
    """(train, validation) carved from data's training set, stratified; both keep data's
    test set, which a search must not look at until its final report."""
    x_tr, x_val, y_tr, y_val = _split(data.x_train, data.y_train, fraction, seed,
                                      f"{data.name}'s training set")
    train = dataclasses.replace(data, x_train=x_tr, y_train=y_tr)
    val = dataclasses.replace(data, name=f"{data.name} (validation)", x_train=x_tr,
                              y_train=y_tr, x_test=x_val, y_test=y_val)
    return train, val


NATIVE_RESOLUTION = {"digits": 32, "folder": 32}  # IDX data: the files' own size


def load_dataset(source: str | None, resolution: int | None, seed: int = 0) -> Dataset:
    """'digits' (or None) for the built-in data, 'fashion-mnist' for Debian's install, a
    folder of IDX files, or a folder with one sub-folder of images per class; at
    `resolution`, or None for the data's own (IDX files' image size; 32 px for digits,
    which are 8 x 8 upscaled, and for image folders)."""
    if source in (None, "", "digits"):
        return load_digits(resolution or NATIVE_RESOLUTION["digits"], seed=seed)
    if source == "fashion-mnist":
        return load_fashion_mnist(resolution)
    if is_idx_folder(source):
        return load_idx_folder(source, resolution)
    return load_image_folder(source, resolution or NATIVE_RESOLUTION["folder"], seed=seed)
