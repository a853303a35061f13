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


# IDX files (MNIST, Fashion-MNIST) -----------------------------------------------------

def _idx(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _idx_folder(path, n_train=40, n_test=20, classes=4, gz=True, size=28):
    import gzip
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    parts = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size), np.uint8),
             "train-labels-idx1-ubyte": (np.arange(n_train) % classes).astype(np.uint8),
             "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, size, size), np.uint8),
             "t10k-labels-idx1-ubyte": (np.arange(n_test) % classes).astype(np.uint8)}
    for name, a in parts.items():
        raw = _idx(a, 0x08)
        if gz:
            (path / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (path / name).write_bytes(raw)
    return parts


@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder_reads_back_exactly(tmp_path, gz):
    from tflm_vit.data import read_idx
    parts = _idx_folder(tmp_path, gz=gz)
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    assert np.array_equal(read_idx(str(tmp_path / name)), parts["train-images-idx3-ubyte"])
    d = load_dataset(str(tmp_path), 28)
    assert d.x_train.shape == (40, 28, 28, 1) and d.x_test.shape == (20, 28, 28, 1)
    assert d.channels == 1 and d.num_classes == 4
    want = parts["train-images-idx3-ubyte"][..., None] / 255.0 * 2 - 1
    assert np.allclose(d.x_train, want, atol=1e-6)  # float32 of (x / 255) * 2 - 1
    assert np.array_equal(d.y_test, parts["t10k-labels-idx1-ubyte"])
    assert load_dataset(str(tmp_path), 16).x_train.shape == (40, 16, 16, 1)


def test_idx_other_dtypes(tmp_path):
    from tflm_vit.data import read_idx
    a = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    (tmp_path / "a").write_bytes(_idx(a, 0x0B))
    assert np.array_equal(read_idx(str(tmp_path / "a")), a)


def test_bad_idx_input(tmp_path):
    from tflm_vit.data import read_idx
    (tmp_path / "junk").write_bytes(b"\x89PNG not idx")
    with pytest.raises(DataError, match="junk: not an IDX file"):
        read_idx(str(tmp_path / "junk"))
    a = _idx(np.zeros((4, 3), np.uint8), 0x08)
    (tmp_path / "short").write_bytes(a[:-2])
    with pytest.raises(DataError, match="short: 10 data bytes, the header's shape"):
        read_idx(str(tmp_path / "short"))
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b broken gzip")
    with pytest.raises(DataError, match="bad.gz: cannot read IDX file"):
        read_idx(str(tmp_path / "bad.gz"))
    one = tmp_path / "one_class"
    _idx_folder(one, classes=1)
    with pytest.raises(DataError, match="training labels hold 1 class"):
        load_dataset(str(one), 28)
    missing = tmp_path / "missing"
    _idx_folder(missing)
    (missing / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="no t10k-labels-idx1-ubyte"):
        load_dataset(str(missing), 28)


def test_fashion_mnist_missing_is_a_clear_error(tmp_path, monkeypatch):
    from tflm_vit import data
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="Fashion-MNIST is not installed .*apt-get install "
                                        "dataset-fashion-mnist"):
        load_dataset("fashion-mnist", 28)


def test_fashion_mnist_as_installed():
    """The real files (make test installs Debian's dataset-fashion-mnist)."""
    d = load_dataset("fashion-mnist", 28)
    assert d.x_train.shape == (60000, 28, 28, 1) and d.x_test.shape == (10000, 28, 28, 1)
    assert d.num_classes == 10 and d.class_names[9] == "Ankle boot"
    assert np.bincount(d.y_test).tolist() == [1000] * 10
    from tflm_vit.data import validation_split
    train, val = validation_split(d, 0.1, 0)
    assert len(train.y_train) == 54000 and len(val.y_test) == 6000
    assert np.array_equal(val.x_train, train.x_train) and val.x_test.shape[0] == 6000
