"""nas.data: .npz and Fashion-MNIST IDX loading, budgets, normalisation, errors."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import event, given, settings
from hypothesis import strategies as st

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


# -- labels, sizes and anything an .npz can hold (issue 16) -------------------------------------
@pytest.fixture
def refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[str], str]:
    """`econas search` on tmp_path/d.npz, run in tmp_path: asserts exit 2 and one line on
    stderr without a traceback, and returns that line."""
    monkeypatch.chdir(tmp_path)
    return lambda extra="": _cli_refusal(tmp_path, capsys, extra)


def _cli_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str = "") -> str:
    from nas.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[study]\nname = "d"\ntrials = 1\n[data]\ndataset = "npz:{tmp_path / "d.npz"}"\n'
        f'train_size = 20\nval_size = 10\ntest_size = 8\n{extra}[hardware]\ndevice = "cpu"\n'
        'meter = "estimate"\n[carbon]\nintensity_g_per_kwh = 50\n'
    )
    assert main(["search", str(cfg)]) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.strip().splitlines() if not x.startswith("econas: study '")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("y_train", "needle"),
    [
        (np.r_[np.arange(59) % 10, 2**40], "label 1099511627776, but 60 training images"),
        (np.r_[np.arange(59, dtype=np.uint64) % 10, np.uint64(2**63)], "label 9223372036854775808"),
        (np.r_[np.arange(199) % 10, 99], "run 0..99 but 89 never occur (10, 11, 12, 13, 14, 15"),
        (np.r_[np.arange(199) % 10, 99], "its labels are 0, 1, 2, 3, 4, 5, ... (11 in all)"),
        (np.arange(60) % 10 + 1, "never occur (0)"),
        (np.zeros(60, np.int64), "single class"),
    ],
)
def test_labels_must_be_0_to_k_minus_1_all_in_training(
    tmp_path: Path, refusal: Callable[[str], str], y_train: np.ndarray, needle: str
) -> None:
    _write_npz(tmp_path / "d.npz", n_train=len(y_train), y_train=y_train)
    line = refusal("")
    assert needle in line and "d.npz" in line


def test_test_labels_must_be_training_classes(
    tmp_path: Path, refusal: Callable[[str], str]
) -> None:
    _write_npz(tmp_path / "d.npz", y_test=np.r_[np.arange(19) % 3, 7])
    line = refusal("")
    assert "y_test has labels the training split lacks (7); its classes are 0..2" in line
    # a test split without some training class is fine: nothing is assumed about it
    _write_npz(tmp_path / "ok.npz", y_test=np.zeros(20, np.int64))
    assert load_data(str(tmp_path / "ok.npz"), budget=_budget()).num_classes == 3


def test_validated_on_the_whole_training_split_not_the_subset(tmp_path: Path) -> None:
    """Class 2 appears once in 60 images: a drawn subset may lack it, the model still has
    three outputs (the classes are the training split's)."""
    path = _write_npz(tmp_path / "rare.npz", y_train=np.r_[np.arange(59) % 2, 2])
    d = load_data(str(path), budget=_budget(train_size=5))
    assert d.num_classes == 3 and 2 not in set(d.train.tensors[1].tolist())


def test_resolution_bounded_at_config_load(tmp_path: Path, refusal: Callable[[str], str]) -> None:
    _write_npz(tmp_path / "d.npz")
    line = refusal("resolution = 100000\n")
    assert line == "econas: error: data.resolution 100000 is larger than the maximum 4096"
    assert not (tmp_path / "runs").exists()


def test_native_images_larger_than_the_maximum_need_a_resolution(tmp_path: Path) -> None:
    path = _write_npz(tmp_path / "wide.npz", shape=(1, 4097))
    with pytest.raises(DataError, match="1x4097, larger than 4096 pixels a side; set data.res"):
        load_data(str(path), budget=_budget())
    assert load_data(str(path), budget=_budget(resolution=4)).image_size == 4


def test_stored_arch_spec_with_a_huge_image_size_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A shared study whose trial says image_size 10**6: export refuses in one line."""
    import json

    import optuna

    from nas.cli import main
    from nas.record import RECORD_VERSION

    monkeypatch.chdir(tmp_path)
    spec = {"family": "cnn", "in_channels": 1, "num_classes": 10, "image_size": 10**6}
    attrs = {
        "arch_spec": json.dumps({**spec, "config": {}}),
        "weights_artifact_id": "abc",
        "record_version": RECORD_VERSION,
    }
    study = optuna.create_study(study_name="t", storage="sqlite:///t.db")
    study.add_trial(
        optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE, values=[0.5], user_attrs=attrs
        )
    )
    args = ["export", "--storage", "sqlite:///t.db", "--study", "t", "--trial", "0"]
    assert main([*args, "--out", "o"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == (
        "econas: error: arch spec: ArchSpec.image_size must be in 1..4096, got 1000000"
    )
    assert "Traceback" not in err and not (tmp_path / "o").exists()


_DTYPES = [np.uint8, np.int8, np.int16, np.uint16, np.int64, np.uint64, np.float32, np.bool_]


@st.composite
def _npz_arrays(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """A valid data set (uint8 square images, labels 0..k-1), then often one array replaced
    by one of any small shape and dtype, or labels of any magnitude and sign."""
    size = draw(st.integers(1, 5))
    channels = draw(st.sampled_from([(), (1,), (3,), (4,)]))
    k = draw(st.integers(2, 4))
    n_train, n_test = draw(st.integers(k + 1, 12)), draw(st.integers(1, 12))
    out = {
        "x_train": np.ones((n_train, size, size, *channels), np.uint8),
        "y_train": np.arange(n_train) % k,
        "x_test": np.ones((n_test, size, size, *channels), np.uint8),
        "y_test": np.arange(n_test) % k,
    }
    key = draw(st.sampled_from([None, *out]))
    if key is None:
        return out
    n = draw(st.sampled_from([len(out[key]), len(out[key]), 0, 1, len(out[key]) + 1]))
    dtype = draw(st.sampled_from(_DTYPES))
    if key.startswith("x_"):
        tail = draw(st.lists(st.integers(0, 5), min_size=0, max_size=4))
        out[key] = np.ones((n, *tail), dtype=dtype)
        return out
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    lo, hi = (0, 2**64 - 1) if info is None else (int(info.min), int(info.max))
    values = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
    out[key] = np.array(values, dtype=object).astype(dtype)
    return out


@settings(max_examples=50, deadline=None)
@given(arrays=_npz_arrays(), resolution=st.sampled_from([None, 3]))
def test_any_npz_loads_or_is_a_data_error(arrays: dict[str, np.ndarray], resolution) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.npz"
        np.savez(path, **arrays)
        try:
            d = load_data(
                str(path), budget=DataBudget(train_size=None, val_size=1, resolution=resolution)
            )
        except DataError as exc:
            assert "\n" not in str(exc)
            event("refused")
            return
    event("loaded")
    y = arrays["y_train"].astype(np.int64)
    assert d.num_classes == int(y.max()) + 1 == len(np.unique(y)) >= 2
    assert set(d.test.tensors[1].tolist()) <= set(range(d.num_classes))
    assert len(d.train) + len(d.val) == len(y)
    assert d.train.tensors[0].shape[1:] == (d.in_channels, d.image_size, d.image_size)
    assert d.image_size >= 1 and torch.isfinite(d.train.tensors[0]).all()


@pytest.mark.parametrize("shape", [(8, 8), (6, 6, 3)])
def test_preprocessing_json_followed_literally_gives_the_model_input(
    tmp_path: Path, shape: tuple[int, ...]
) -> None:
    """preprocessing.json said "layout": "NCHW" next to "channels last" without saying which
    is the raw data's and which the model's: following it must reproduce econas's input."""
    from nas.data import preprocessing

    path = _write_npz(tmp_path / "d.npz", shape=shape)
    d = load_data(f"npz:{path}", budget=_budget())
    prep = preprocessing(
        f"npz:{path}", mean=d.mean, std=d.std, input_shape=tuple(d.test.tensors[0].shape[1:])
    )
    assert prep["layout"] == "NCHW" and "channels last" not in str(prep["channel_order"])
    raw = np.load(path)["x_test"][d.test_indices].astype(np.float32)
    if prep["raw_layout"].startswith("NHWC"):
        assert "transpose (0, 3, 1, 2)" in prep["raw_layout"]
        raw = raw.transpose(0, 3, 1, 2)
    else:
        assert prep["raw_layout"].startswith("NHW ") and "axis 1" in prep["raw_layout"]
        raw = raw[:, None]
    mean = np.array(prep["mean"], dtype=np.float32)[None, :, None, None]
    std = np.array(prep["std"], dtype=np.float32)[None, :, None, None]
    x = (raw * prep["scale"] - mean) / std
    np.testing.assert_allclose(x, d.test.tensors[0].numpy(), atol=1e-5)
