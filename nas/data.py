"""Image classification data sets for the proxies: Fashion-MNIST (offline IDX), CIFAR-10, .npz.

:func:`load_data` returns :class:`DataSplits`: train, validation (carved out of the training
split, disjoint from the train subset) and test tensors, normalised per channel with the
statistics of the train subset. Raw arrays are decoded once per process and cached.

Before anything large is allocated, the memory the data needs is estimated
(:mod:`nas.memory`) and checked against the budget (``[hardware] memory_budget_gb``, by
default a share of the memory available): an ``.npz`` is measured from its arrays' headers
before it is decompressed. Labels must be ``0..K-1`` with each of the K classes present in
the training split (the test split may lack some, never add one); images at most
``search_spaces.MAX_IMAGE_SIZE`` pixels a side after resizing.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nas.errors import DataError

if TYPE_CHECKING:
    import torch
    from torch.utils.data import TensorDataset

    from nas.memory import DataEstimate

__all__ = [
    "DataBudget",
    "DataSplits",
    "list_datasets",
    "load_data",
    "parse_dataset_arg",
    "drawn_test_indices",
    "indices_digest",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
_FASHION_MNIST_ENV = "ECONAS_FASHION_MNIST_DIR"
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
_ALIASES = {
    "fashion-mnist": "fashion-mnist",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# (x_train, y_train, x_test, y_test, source): images uint8 (N, H, W, C), labels int64
_Raw = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]


@dataclass(frozen=True, kw_only=True)
class DataBudget:
    """How much data a study uses. ``None`` sizes mean the whole split; ``resolution`` None = native."""

    train_size: int | None
    val_size: int
    test_size: int | None = None
    resolution: int | None = None
    batch_size: int = 64

    def __post_init__(self) -> None:
        for name in ("train_size", "val_size", "test_size", "resolution", "batch_size"):
            value = getattr(self, name)
            if value is None and name in ("train_size", "test_size", "resolution"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"data budget: {name} must be a positive integer, got {value!r}")


@dataclass(eq=False, kw_only=True)
class DataSplits:
    """Normalised float32 images (N, C, H, W) and int64 labels, with where they came from."""

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    in_channels: int
    image_size: int
    source: str
    fingerprint: str
    mean: tuple[float, ...] = ()  # per-channel statistics of the train subset, in [0, 1] units
    std: tuple[float, ...] = ()
    train_split_size: int = 0  # images in the whole training split (validation included)
    test_split_size: int = 0  # images in the whole test split
    resident_bytes: int = 0  # raw arrays + float subsets held in memory (nas.memory's estimate)
    train_indices: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    val_indices: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    test_indices: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))


def list_datasets() -> list[str]:
    """Built-in data set names (any ``.npz`` path, or ``npz:PATH``, is accepted as well)."""
    return sorted(set(_ALIASES.values()))


def parse_dataset_arg(s: str) -> tuple[str, Path | None]:
    """``("fashion-mnist", None)``, ``("cifar10", None)`` or ``("npz", path)``; DataError otherwise."""
    text = s.strip()
    if text.lower().startswith("npz:"):
        path = text[4:].strip()
        if not path:
            raise DataError("data set 'npz:' names no file; use npz:PATH/TO/FILE.npz")
        return "npz", Path(path).expanduser()
    if text.lower().endswith(".npz"):
        return "npz", Path(text).expanduser()
    canonical = _ALIASES.get(text.lower())
    if canonical is None:
        known = ", ".join(list_datasets())
        raise DataError(f"unknown data set {s!r}; known: {known}, or an .npz file (npz:PATH)")
    return canonical, None


def load_data(
    name: str,
    *,
    budget: DataBudget,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    memory_budget_gb: float | None = None,
) -> DataSplits:
    """Load ``name`` and draw the train/val/test subsets of ``budget`` with a seeded permutation.

    ``memory_budget_gb``: the budget of :func:`nas.memory.memory_budget` (None: a share of the
    memory available); data that would not fit raises DataError before it is allocated.
    """
    kind, path = parse_dataset_arg(name)
    cache = Path(cache_dir).expanduser() if cache_dir else Path.home() / ".cache" / "econas"
    label = kind if path is None else f"npz:{path.name}"
    if path is not None:
        from nas.files import regular_file

        regular_file(path, "data file", error=DataError)  # not a directory, FIFO or /dev/zero
        shapes = _npz_image_shapes(path)  # from the headers: nothing decompressed yet
        if shapes is not None:
            _check_memory(label, *shapes, budget, memory_budget_gb, raw_held=False)
    raw = _read_raw(kind, path, cache)
    x_train, y_train, x_test, y_test, source = raw
    train_idx, val_idx, test_idx = _draw_indices(len(y_train), len(y_test), budget, seed)
    _check_image_size(label, x_train.shape, budget.resolution)
    estimate = _check_memory(
        label, x_train.shape, x_test.shape, budget, memory_budget_gb, raw_held=True
    )
    train_x = _to_float(x_train[train_idx], budget.resolution)
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), unbiased=False, keepdim=True)
    std = std.where(std > 1e-12, std.new_ones(()))  # constant channel: centre only
    val_x = _to_float(x_train[val_idx], budget.resolution).sub_(mean).div_(std)
    test_x = _to_float(x_test[test_idx], budget.resolution).sub_(mean).div_(std)
    return DataSplits(
        name=label,
        train=_dataset(train_x.sub_(mean).div_(std), y_train[train_idx]),
        val=_dataset(val_x, y_train[val_idx]),
        test=_dataset(test_x, y_test[test_idx]),
        num_classes=int(y_train.max()) + 1,  # _validate: 0..K-1, all K in the training split
        in_channels=int(train_x.shape[1]),
        image_size=int(train_x.shape[2]),
        source=source,
        fingerprint=_fingerprint(label, budget, seed, source),
        mean=tuple(float(v) for v in mean.flatten()),
        std=tuple(float(v) for v in std.flatten()),
        train_split_size=len(y_train),
        test_split_size=len(y_test),
        resident_bytes=estimate.resident_bytes,
        train_indices=train_idx,
        val_indices=val_idx,
        test_indices=test_idx,
    )


def drawn_test_indices(
    name: str, *, budget: DataBudget, seed: int = 0, cache_dir: str | Path | None = None
) -> tuple[np.ndarray, int]:
    """The test subset :func:`load_data` draws for ``budget`` and ``seed``, as positions in
    ``name``'s test split (sorted), and that split's size; nothing is converted or normalised
    (an export names the images its ``test_accuracy`` was scored on with these)."""
    kind, path = parse_dataset_arg(name)
    cache = Path(cache_dir).expanduser() if cache_dir else Path.home() / ".cache" / "econas"
    if path is not None:
        from nas.files import regular_file

        regular_file(path, "data file", error=DataError)
    _, y_train, _, y_test, _ = _read_raw(kind, path, cache)
    _, _, test_idx = _draw_indices(len(y_train), len(y_test), budget, seed)
    return test_idx, len(y_test)


def indices_digest(indices: np.ndarray) -> str:
    """SHA-256 of subset positions written as ``"3,17,42"``: how a record says which images
    a figure was measured on without storing them."""
    text = ",".join(str(int(i)) for i in indices)
    return hashlib.sha256(text.encode()).hexdigest()


def _read_raw(kind: str, path: Path | None, cache: Path) -> _Raw:
    """The raw arrays of a data set (decoded once per process)."""
    if path is not None:
        return _read_npz_cached(path)
    if kind == "fashion-mnist":
        return _fashion_mnist(cache)
    return _torchvision_cached("cifar10", str(cache))


def preprocessing(
    name: str,
    *,
    mean: tuple[float, ...] | list[float],
    std: tuple[float, ...] | list[float],
    input_shape: tuple[int, int, int],
    resolution: int | None = None,
) -> dict[str, object]:
    """How a raw image becomes a model input, for ``preprocessing.json`` next to an export:
    ``x = (raw_uint8 * scale - mean[c]) / std[c]`` per channel. Raw images are stored
    channels last (N, H, W[, C]: ``raw_layout``); the model takes channels first (N, C, H, W:
    ``layout``), so colour images are transposed (0, 3, 1, 2) and grey ones get an axis."""
    kind, _ = parse_dataset_arg(name)
    channels = input_shape[0]
    order = {"fashion-mnist": "L (grayscale)", "cifar10": "RGB"}.get(
        kind, "L (grayscale)" if channels == 1 else "as stored in the .npz"
    )
    raw = (
        "NHW (grayscale, no channel axis): add one at axis 1"
        if channels == 1
        else "NHWC (channels last, as stored): transpose (0, 3, 1, 2) to NCHW"
    )
    out: dict[str, object] = {
        "scale": 1.0 / 255.0,
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "input_shape": list(input_shape),
        "layout": "NCHW",  # what the model takes
        "raw_layout": raw,  # what the data set stores
        "dtype": "float32",
        "channel_order": order,
        "formula": "x = (raw_uint8 * scale - mean[c]) / std[c]",
        "dataset": name,
    }
    if resolution is not None:
        out["resize"] = {
            "size": [resolution, resolution],
            "mode": "bilinear (antialiased when shrinking), after scaling, before normalising",
        }
    return out


def _draw_indices(
    n_train: int, n_test: int, budget: DataBudget, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if budget.val_size >= n_train:
        raise DataError(
            f"data budget: val_size {budget.val_size} leaves no training data "
            f"(the training split has {n_train} images)"
        )
    available = n_train - budget.val_size
    if budget.train_size is not None and budget.train_size > available:
        raise DataError(
            f"data budget: train_size {budget.train_size} is larger than the {available} images "
            f"available ({n_train} in the training split minus val_size {budget.val_size})"
        )
    if budget.test_size is not None and budget.test_size > n_test:
        raise DataError(
            f"data budget: test_size {budget.test_size} is larger than the test split ({n_test})"
        )
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_train)
    val_idx = np.sort(perm[: budget.val_size])
    stop = None if budget.train_size is None else budget.val_size + budget.train_size
    train_idx = np.sort(perm[budget.val_size : stop])
    test_perm = rng.permutation(n_test)
    test_idx = np.sort(test_perm if budget.test_size is None else test_perm[: budget.test_size])
    return train_idx, val_idx, test_idx


def _check_image_size(label: str, shape: tuple[int, ...], resolution: int | None) -> None:
    from search_spaces import MAX_IMAGE_SIZE

    height, width = int(shape[1]), int(shape[2])
    if resolution is None and max(height, width) > MAX_IMAGE_SIZE:
        raise DataError(
            f"{label}: images are {height}x{width}, larger than {MAX_IMAGE_SIZE} pixels a side; "
            "set data.resolution to resize them"
        )


def _check_memory(
    label: str,
    train_shape: tuple[int, ...],
    test_shape: tuple[int, ...],
    budget: DataBudget,
    memory_budget_gb: float | None,
    *,
    raw_held: bool,
) -> DataEstimate:
    """DataError when the data would not fit the memory budget; the estimate otherwise.

    ``raw_held``: the raw arrays are already in memory. Against the default budget (a share
    of what is available *now*) they are then not counted again."""
    from nas.memory import check_data, estimate_data, memory_budget

    n_all, n_test_all = int(train_shape[0]), int(test_shape[0])
    val = min(budget.val_size, n_all)
    train = n_all - val if budget.train_size is None else min(budget.train_size, n_all - val)
    test = n_test_all if budget.test_size is None else min(budget.test_size, n_test_all)
    estimate = estimate_data(
        train_shape, test_shape, n_train=train, n_val=val, n_test=test, resolution=budget.resolution
    )
    limit = memory_budget(memory_budget_gb)
    need = estimate
    if raw_held and not limit.configured:
        need = replace(estimate, raw_bytes=0, peak_bytes=estimate.peak_bytes - estimate.raw_bytes)
    check_data(need, limit, name=label)
    return estimate


def _to_float(images: np.ndarray, resolution: int | None) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1], resized to resolution² if asked."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    height, width = x.shape[2], x.shape[3]
    if resolution is not None and (height, width) != (resolution, resolution):
        down = resolution < max(height, width)
        x = F.interpolate(
            x, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=down
        )
    elif height != width:
        raise DataError(
            f"images are {height}x{width}, not square; set data.resolution to resize them"
        )
    return x.contiguous()


def _dataset(x: torch.Tensor, y: np.ndarray) -> TensorDataset:
    import torch
    from torch.utils.data import TensorDataset

    return TensorDataset(x, torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))


def _fingerprint(name: str, budget: DataBudget, seed: int, source: str) -> str:
    payload = {"name": name, "budget": asdict(budget), "seed": seed, "source": source}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _validate(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, source: str
) -> _Raw:
    """Check shapes/dtypes/labels, return read-only uint8 (N, H, W, C) images, int64 labels."""
    out: list[np.ndarray] = []
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype != np.uint8:
            raise DataError(f"{source}: x_{split} must be uint8 images, got dtype {x.dtype}")
        if x.ndim == 3:
            x = x[..., None]
        elif x.ndim != 4 or not 1 <= x.shape[3] <= 4:
            raise DataError(
                f"{source}: x_{split} must be N×H×W or N×H×W×C (C<=4, channels last), "
                f"got shape {x.shape}"
            )
        if min(x.shape[1], x.shape[2]) < 1:
            raise DataError(f"{source}: x_{split} images are {x.shape[1]}x{x.shape[2]} pixels")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(
                f"{source}: y_{split} must be a 1-D integer array, got {y.dtype} {y.shape}"
            )
        if len(x) != len(y):
            raise DataError(
                f"{source}: x_{split} has {len(x)} images but y_{split} {len(y)} labels"
            )
        if len(y) == 0:
            raise DataError(f"{source}: the {split} split is empty")
        if y.min() < 0:
            raise DataError(f"{source}: y_{split} has negative labels (min {y.min()})")
        out += [x, y]
    y_train, y_test = _check_labels(out[1], out[3], source)
    out[1], out[3] = y_train, y_test
    for array in out:
        array.setflags(write=False)
    if out[0].shape[1:] != out[2].shape[1:]:
        raise DataError(
            f"{source}: train images are {out[0].shape[1:]} but test images {out[2].shape[1:]}"
        )
    return out[0], out[1], out[2], out[3], source


def _check_labels(y_train: np.ndarray, y_test: np.ndarray, source: str) -> tuple[np.ndarray, ...]:
    """Labels 0..K-1 with all K classes (K >= 2) in the training split, test labels among
    them; as int64. The maxima are compared before casting (uint64 >= 2**63 would wrap) and
    before counting (a label of 2**40 must not size an array)."""
    n = len(y_train)
    top = int(y_train.max())  # Python int: exact for every integer dtype
    if top >= n:
        raise DataError(
            f"{source}: y_train has label {top}, but {n} training images can hold at most "
            f"{n} classes; labels must be 0..K-1 with every class in the training split"
        )
    y_train = y_train.astype(np.int64)
    counts = np.bincount(y_train, minlength=top + 1)
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        present = np.flatnonzero(counts)
        raise DataError(
            f"{source}: labels must be 0..K-1 with every class in the training split; y_train's "
            f"run 0..{top} but {len(missing)} never occur ({_few(missing)}); its labels are "
            f"{_few(present)}"
        )
    if top < 1:
        raise DataError(f"{source}: y_train has a single class ({top}); it needs at least 2")
    test_top = int(y_test.max())
    if test_top > top:
        odd = np.unique(y_test[y_test > top])
        raise DataError(
            f"{source}: y_test has labels the training split lacks ({_few(odd)}); its classes "
            f"are 0..{top}"
        )
    return y_train, y_test.astype(np.int64)


def _few(values: np.ndarray, limit: int = 6) -> str:
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return shown if len(values) <= limit else f"{shown}, ... ({len(values)} in all)"


def _npz_image_shapes(path: Path) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """(x_train shape, x_test shape) read from the .npz members' headers without
    decompressing the arrays; None when they are not plain uint8 images (the full read
    then says what is wrong) or the headers cannot be read."""
    shapes: list[tuple[int, ...]] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for key in ("x_train", "x_test"):
                with archive.open(f"{key}.npy") as fh:
                    version = np.lib.format.read_magic(fh)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                    else:
                        return None
                if dtype != np.uint8 or len(shape) not in (3, 4):
                    return None
                shapes.append(tuple(int(v) for v in shape))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return shapes[0], shapes[1]


def _read_npz_cached(path: Path) -> _Raw:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    st = path.stat()
    return _read_npz(str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=4)
def _read_npz(path: str, mtime_ns: int, size: int) -> _Raw:  # stat in the key: re-read on change
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} is not a valid .npz (zip) file: {exc}") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path} is not a valid .npz (zip) file (it holds a single array)")
    with archive:
        missing = [k for k in _NPZ_KEYS if k not in archive.files]
        if missing:
            raise DataError(f"{path} lacks the keys {', '.join(missing)} (needs {_NPZ_KEYS})")
        try:
            arrays = [archive[k] for k in _NPZ_KEYS]
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: cannot read its arrays: {exc}") from None
    return _validate(*arrays, source=path)


def _fashion_mnist(cache: Path) -> _Raw:
    env = os.environ.get(_FASHION_MNIST_ENV)
    directory = Path(env).expanduser() if env else FASHION_MNIST_DIR
    if env or directory.is_dir():
        return _read_idx_dir(str(directory.resolve()))
    return _torchvision_cached("fashion-mnist", str(cache))


@functools.lru_cache(maxsize=2)
def _read_idx_dir(directory: str) -> _Raw:
    missing = [f for f in _IDX_FILES.values() if not (Path(directory) / f).is_file()]
    if missing:
        raise DataError(f"Fashion-MNIST directory {directory} lacks {', '.join(missing)}")
    arrays = {k: _read_idx(Path(directory) / f) for k, f in _IDX_FILES.items()}
    return _validate(**arrays, source=directory)


def _read_idx(path: Path) -> np.ndarray:
    """Decode one gzipped IDX file: magic 2051 = images (N, rows, cols), 2049 = labels (N,)."""
    try:
        with gzip.open(path, "rb") as fh:
            blob = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    magic = int.from_bytes(blob[:4], "big") if len(blob) >= 4 else -1
    ndim = {2051: 3, 2049: 1}.get(magic)
    if ndim is None:
        raise DataError(f"{path} is not an IDX image/label file (magic {magic})")
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(blob[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(blob) != header + int(np.prod(shape)):
        raise DataError(f"{path} is truncated: header says {shape}, got {len(blob) - header} bytes")
    return np.frombuffer(blob, dtype=np.uint8, offset=header).reshape(shape)


@functools.lru_cache(maxsize=2)
def _torchvision_cached(name: str, root: str) -> _Raw:
    """Download (or reuse) ``name`` through torchvision into ``root``."""
    try:
        from torchvision import datasets
    except ImportError as exc:
        raise DataError(f"data set {name!r} needs torchvision: pip install torchvision") from exc
    cls = datasets.FashionMNIST if name == "fashion-mnist" else datasets.CIFAR10
    try:
        train = cls(root=root, train=True, download=True)
        test = cls(root=root, train=False, download=True)
    except Exception as exc:  # URLError, RuntimeError, ...: all mean "cannot get it"
        raise DataError(
            f"cannot download data set {name!r} into {root}: {type(exc).__name__}: {exc}"
        ) from None
    arrays = [np.asarray(ds.data) for ds in (train, test)]
    labels = [np.asarray(ds.targets, dtype=np.int64) for ds in (train, test)]
    return _validate(arrays[0], labels[0], arrays[1], labels[1], source=f"torchvision:{root}")
