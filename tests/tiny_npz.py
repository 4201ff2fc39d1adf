"""The tiny search the fault tests run: :mod:`tests.configs` on a 300/100/100-image npz
(random sampler, one small CNN, 1 epoch, ``meter = "estimate"``). Each test writes its own
copy under its tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests import configs


def write_npz(path: Path, *, n_train: int = 300, n_test: int = 100, side: int = 8) -> Path:
    """A small learnable data set: the class is which quarter of the image is bright."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 4, size=n)
        x = rng.integers(0, 60, size=(n, side, side), dtype=np.uint8)
        half = side // 2
        for i, c in enumerate(y):
            r, k = divmod(int(c), 2)
            x[i, r * half : (r + 1) * half, k * half : (k + 1) * half] += 150
        return x, y.astype(np.int64)

    x_train, y_train = split(n_train)
    x_test, y_test = split(n_test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def tiny_toml(
    root: Path, *, name: str = "t", trials: int = 1, extra: str = "", **study: Any
) -> Path:
    """``root / "tiny.toml"``: the shared tiny config (:mod:`tests.configs`) on a 300/100/100
    npz written beside it, its storage and artifacts under ``root / "runs" / name``."""
    root.mkdir(parents=True, exist_ok=True)
    npz = root / "tiny.npz"
    if not npz.exists():
        write_npz(npz)
    keys = {
        "storage": f"sqlite:///{root / 'runs' / name / 'study.db'}",
        "artifacts": str(root / "runs" / name / "artifacts"),
        "trials": trials,
        **study,
    }
    path = configs.tiny_toml(
        root,
        name,
        extra=extra,
        study={k: v for k, v in keys.items() if v is not None},
        data={"dataset": f"npz:{npz}"},
    )
    return path.rename(root / "tiny.toml")
