"""The tiny search the fault tests run: a 300/100/100-image npz, random sampler, one small
CNN, 1 epoch, ``meter = "estimate"``. Each test writes its own copy under its tmp_path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.configs import tiny_config_dict, to_toml


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
    """A config for the tiny search under ``root`` (its npz written beside it); ``study``
    keys change ``[study]`` (None: left out), ``extra`` is raw TOML appended."""
    root.mkdir(parents=True, exist_ok=True)
    npz = root / "tiny.npz"
    if not npz.exists():
        write_npz(npz)
    doc = tiny_config_dict(
        name,
        study={
            "seed": None,
            "storage": f"sqlite:///{root / 'runs' / name / 'study.db'}",
            "artifacts": str(root / "runs" / name / "artifacts"),
            "trials": trials,
            **study,
        },
        search={"cnn": {"width_choices": [8], "expand_choices": [1]}},
        data={"dataset": f"npz:{npz}"},
        carbon={"intensity_g_per_kwh": None, "region": "FRA"},
    )
    path = root / "tiny.toml"
    path.write_text(to_toml(doc) + extra, encoding="utf-8")
    return path
