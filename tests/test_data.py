import numpy as np
import pytest
from PIL import Image

from tflm_vit.data import load_dataset, load_image_folder
from tflm_vit.errors import DataError


def test_digits_default(digits):
    assert digits.x_train.shape[1:] == (32, 32, 3) and digits.num_classes == 10
    assert digits.x_train.min() >= -1 and digits.x_train.max() <= 1
    assert len(digits.x_train) + len(digits.x_test) == 1797


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(
                tmp_path / cls / f"{i}.png")
    d = load_dataset(str(tmp_path), 16)
    assert d.class_names == ["cat", "dog"] and d.x_train.shape[1:] == (16, 16, 3)
    assert len(d.x_train) + len(d.x_test) == 10


def test_bad_folders(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(str(tmp_path / "nope"))
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match="at least 2 class"):
        load_image_folder(str(tmp_path))
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        load_image_folder(str(tmp_path))
    (tmp_path / "a" / "x.png").write_text("not an image")
    (tmp_path / "b" / "y.png").write_text("not an image")
    with pytest.raises(DataError, match="cannot read image"):
        load_image_folder(str(tmp_path))
