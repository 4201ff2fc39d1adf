"""nas.data: .npz and Fashion-MNIST IDX loading, budgets, normalisation, errors."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.data import DataBudget, list_datasets, load_data, parse_dataset_arg
from nas.errors import DataError

FMNIST = Path("/usr/share/datasets/fashion-mnist")


def _write_npz(path: Path, *, n_train: int = 60, n_test: int = 20, shape=(8, 8), **override):
    rng = np.random.default_rng(1)
    arrays = {
        # distinct first pixels: each image identifies its own index
        "x_train": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "y_train": np.arange(n_train) % 3,
        "x_test": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "y_test": np.arange(n_test) % 3,
    }
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _budget(**kw) -> DataBudget:
    return DataBudget(**{"train_size": 30, "val_size": 10, "test_size": 8, **kw})


@pytest.fixture
def gray(tmp_path: Path) -> Path:
    return _write_npz(tmp_path / "gray.npz")


@pytest.fixture
def colour(tmp_path: Path) -> Path:
    return _write_npz(tmp_path / "colour.npz", shape=(6, 6, 3))


def test_grayscale_shapes_and_labels(gray: Path) -> None:
    d = load_data(str(gray), budget=_budget())
    assert d.train.tensors[0].shape == (30, 1, 8, 8)
    assert d.val.tensors[0].shape == (10, 1, 8, 8)
    assert d.test.tensors[0].shape == (8, 1, 8, 8)
    assert d.train.tensors[0].dtype == torch.float32
    assert d.train.tensors[1].dtype == torch.int64
    assert (d.in_channels, d.image_size, d.num_classes) == (1, 8, 3)  # the training labels
    assert d.source == str(gray.resolve())
    assert d.name == "npz:gray.npz"


def test_colour_channels_last_becomes_nchw(colour: Path) -> None:
    d = load_data(f"npz:{colour}", budget=_budget(train_size=None))
    assert d.train.tensors[0].shape == (50, 3, 6, 6)
    assert d.in_channels == 3 and len(d.mean) == 3
    raw = np.load(colour)["x_train"]
    # channel order survives the transpose: un-normalise image 0 of the train subset
    i = int(d.train_indices[0])
    x0 = d.train.tensors[0][0] * torch.tensor(d.std)[:, None, None]
    x0 = x0 + torch.tensor(d.mean)[:, None, None]
    np.testing.assert_allclose(x0.permute(1, 2, 0).numpy() * 255, raw[i], atol=1e-3)


def test_normalised_with_train_statistics(colour: Path) -> None:
    d = load_data(str(colour), budget=_budget(train_size=None))
    x = d.train.tensors[0]
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    raw = np.load(colour)["x_train"][d.train_indices] / 255.0
    np.testing.assert_allclose(d.mean, raw.mean(axis=(0, 1, 2)), rtol=1e-5)
    # val and test use the same (train) statistics, not their own
    val_raw = np.load(colour)["x_train"][d.val_indices] / 255.0
    expected = (val_raw[0, 0, 0] - np.array(d.mean)) / np.array(d.std)
    np.testing.assert_allclose(d.val.tensors[0][0, :, 0, 0].numpy(), expected, rtol=1e-4)


def test_val_is_disjoint_from_train_and_from_training_split(gray: Path) -> None:
    d = load_data(str(gray), budget=_budget(train_size=None))
    assert set(d.train_indices.tolist()).isdisjoint(d.val_indices.tolist())
    assert len(d.train_indices) + len(d.val_indices) == 60
    raw = np.load(gray)
    # the val images are the training split's images at val_indices (not test images)
    labels = raw["y_train"][d.val_indices]
    assert torch.equal(d.val.tensors[1], torch.from_numpy(labels.astype(np.int64)))
    train_imgs = {raw["x_train"][i].tobytes() for i in d.train_indices}
    assert not any(raw["x_train"][i].tobytes() in train_imgs for i in d.val_indices)


def test_resolution_resizes(gray: Path) -> None:
    d = load_data(str(gray), budget=_budget(resolution=16))
    assert d.train.tensors[0].shape == (30, 1, 16, 16)
    assert d.image_size == 16
    d = load_data(str(gray), budget=_budget(resolution=4))
    assert d.test.tensors[0].shape == (8, 1, 4, 4)


def test_non_square_needs_resolution(tmp_path: Path) -> None:
    path = _write_npz(tmp_path / "wide.npz", shape=(4, 8))
    with pytest.raises(DataError, match="not square"):
        load_data(str(path), budget=_budget())
    assert load_data(str(path), budget=_budget(resolution=8)).image_size == 8


def test_deterministic_per_seed(gray: Path) -> None:
    a = load_data(str(gray), budget=_budget(), seed=3)
    b = load_data(str(gray), budget=_budget(), seed=3)
    c = load_data(str(gray), budget=_budget(), seed=4)
    assert torch.equal(a.train.tensors[0], b.train.tensors[0])
    assert np.array_equal(a.val_indices, b.val_indices)
    assert a.fingerprint == b.fingerprint
    assert not np.array_equal(a.train_indices, c.train_indices)
    assert a.fingerprint != c.fingerprint
    assert a.fingerprint != load_data(str(gray), budget=_budget(train_size=29)).fingerprint


def test_budget_validation() -> None:
    for bad in ({"val_size": 0}, {"train_size": -1}, {"test_size": 0}, {"resolution": 0}):
        with pytest.raises(DataError):
            _budget(**bad)
    with pytest.raises(DataError, match="batch_size"):
        _budget(batch_size=0)
    with pytest.raises(DataError):
        _budget(val_size=True)


def test_sizes_larger_than_available(gray: Path) -> None:
    with pytest.raises(DataError, match="train_size 51 is larger"):
        load_data(str(gray), budget=_budget(train_size=51))
    with pytest.raises(DataError, match="val_size 60"):
        load_data(str(gray), budget=_budget(val_size=60, train_size=None))
    with pytest.raises(DataError, match="test_size 21"):
        load_data(str(gray), budget=_budget(test_size=21))


def test_unknown_name_lists_known() -> None:
    with pytest.raises(DataError, match="unknown data set 'mnist-ish'.*fashion-mnist"):
        load_data("mnist-ish", budget=_budget())
    assert list_datasets() == ["cifar10", "fashion-mnist"]
    assert parse_dataset_arg("Fashion_MNIST") == ("fashion-mnist", None)
    assert parse_dataset_arg("npz:a/b.npz") == ("npz", Path("a/b.npz"))


def test_missing_npz(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_data(str(tmp_path / "nope.npz"), budget=_budget())


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip file at all")
    with pytest.raises(DataError, match="not a valid .npz"):
        load_data(str(path), budget=_budget())
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DataError, match="not a valid .npz"):
        load_data(f"npz:{single}", budget=_budget())


def test_missing_keys_named(tmp_path: Path) -> None:
    path = _write_npz(tmp_path / "m.npz", y_test=None, x_test=None)
    with pytest.raises(DataError, match="x_test, y_test"):
        load_data(str(path), budget=_budget())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"x_train": np.zeros((60, 8), np.uint8)}, "N×H×W"),
        ({"x_train": np.zeros((60, 8, 8, 7), np.uint8)}, "N×H×W"),
        ({"x_train": np.zeros((60, 8, 8), np.float32)}, "uint8"),
        ({"y_train": np.zeros(60, np.float32)}, "integer"),
        ({"y_train": np.zeros(59, np.int64)}, "60 images but y_train 59"),
        ({"y_test": np.full(20, -1)}, "negative"),
        ({"x_test": np.zeros((20, 9, 9), np.uint8)}, "test images"),
    ],
)
def test_bad_arrays(tmp_path: Path, override: dict, message: str) -> None:
    path = _write_npz(tmp_path / "bad.npz", **override)
    with pytest.raises(DataError, match=message):
        load_data(str(path), budget=_budget())


def test_changed_file_is_reread(tmp_path: Path) -> None:
    path = _write_npz(tmp_path / "d.npz")
    assert load_data(str(path), budget=_budget()).num_classes == 3
    stat = path.stat()
    _write_npz(path, y_train=np.arange(60) % 7, y_test=np.arange(20) % 7)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # coarse clocks: force it
    assert load_data(str(path), budget=_budget()).num_classes == 7


def test_cifar10_download_failure_is_data_error(tmp_path: Path, monkeypatch) -> None:
    from torchvision import datasets

    def offline(*args, **kwargs):
        raise RuntimeError("network unreachable")

    monkeypatch.setattr(datasets, "CIFAR10", offline)
    with pytest.raises(DataError, match="cannot download data set 'cifar10'.*network"):
        load_data("cifar10", budget=_budget(), cache_dir=tmp_path / "fresh")


def _write_idx(path: Path, array: np.ndarray, magic: int) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def _write_idx_dir(directory: Path, *, test_label_magic: int = 2049) -> np.ndarray:
    directory.mkdir(exist_ok=True)
    x_train = np.random.default_rng(0).integers(0, 256, (40, 5, 5), dtype=np.uint8)
    _write_idx(directory / "train-images-idx3-ubyte.gz", x_train, 2051)
    _write_idx(directory / "train-labels-idx1-ubyte.gz", np.arange(40) % 10, 2049)
    _write_idx(directory / "t10k-images-idx3-ubyte.gz", x_train[:10], 2051)
    _write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.arange(10), test_label_magic)
    return x_train


def test_idx_directory_from_env(tmp_path: Path, monkeypatch) -> None:
    x_train = _write_idx_dir(tmp_path / "ok")
    monkeypatch.setenv("ECONAS_FASHION_MNIST_DIR", str(tmp_path / "ok"))
    d = load_data("fashion-mnist", budget=_budget(train_size=None, test_size=None))
    assert d.source == str((tmp_path / "ok").resolve())
    assert d.train.tensors[0].shape == (30, 1, 5, 5) and d.num_classes == 10
    assert torch.equal(d.train.tensors[1], torch.from_numpy(d.train_indices % 10))
    # pixels decoded in row-major order: un-normalise and compare with what was written
    i = int(d.train_indices[0])
    x0 = d.train.tensors[0][0, 0] * d.std[0] + d.mean[0]
    np.testing.assert_allclose(x0.numpy() * 255, x_train[i], atol=1e-3)


def test_idx_bad_files(tmp_path: Path, monkeypatch) -> None:
    _write_idx_dir(tmp_path / "magic", test_label_magic=2051)  # labels claim to be images
    monkeypatch.setenv("ECONAS_FASHION_MNIST_DIR", str(tmp_path / "magic"))
    with pytest.raises(DataError, match="truncated"):
        load_data("fashion-mnist", budget=_budget())
    _write_idx_dir(tmp_path / "junk")
    (tmp_path / "junk" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\0\0\1\1abcd"))
    monkeypatch.setenv("ECONAS_FASHION_MNIST_DIR", str(tmp_path / "junk"))
    with pytest.raises(DataError, match="not an IDX"):
        load_data("fashion-mnist", budget=_budget())
    monkeypatch.setenv("ECONAS_FASHION_MNIST_DIR", str(tmp_path / "absent"))
    with pytest.raises(DataError, match="lacks"):
        load_data("fashion-mnist", budget=_budget())


@pytest.mark.skipif(not FMNIST.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist(monkeypatch) -> None:
    monkeypatch.delenv("ECONAS_FASHION_MNIST_DIR", raising=False)
    d = load_data(
        "fashion-mnist", budget=DataBudget(train_size=500, val_size=100, test_size=200), seed=0
    )
    assert d.train.tensors[0].shape == (500, 1, 28, 28)
    assert d.test.tensors[0].shape == (200, 1, 28, 28)
    assert (d.num_classes, d.in_channels, d.image_size) == (10, 1, 28)
    for split in (d.train, d.val, d.test):
        labels = split.tensors[1]
        assert int(labels.min()) >= 0 and int(labels.max()) <= 9
    assert len(torch.unique(d.train.tensors[1])) == 10
    assert d.source == str(FMNIST.resolve())
    assert abs(float(d.train.tensors[0].mean())) < 1e-4
    # the raw training split is 60,000 images: the whole split minus val is available
    full = load_data("fashion-mnist", budget=DataBudget(train_size=None, val_size=100))
    assert len(full.train) == 59_900 and len(full.test) == 10_000
