"""Tiny real studies for the report, label, lifecycle, notebook and dashboard tests.

A real search (``nas.search.run_search``) on Fashion-MNIST slices (200 train, 100 val, 100
test images, 1 epoch, tiny CNN/ViT options), stored in a temp dir (explicit storage and
artifact paths, so nothing lands in ``runs/``). Studies are cached per process by key, so
test modules share them.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import optuna

from nas.config import Config, config_from_dict
from tests import configs

_CACHE: dict[str, tuple[Config, optuna.Study]] = {}

TINY_SEARCH: dict[str, Any] = {
    "spaces": ["cnn", "vit"],
    "cnn": {
        "max_stages": 2,
        "stem_width_choices": [8],
        "width_choices": [8, 16],
        "depth_choices": [1],
        "kernel_choices": [3],
        "expand_choices": [1, 2],
    },
    "vit": {
        "patch_choices": [7],
        "dim_choices": [16, 32],
        "heads_choices": [2],
        "depth_choices": [1],
        "mlp_ratio_choices": [2],
    },
}


def tiny_config_dict(root: Path, name: str, *, trials: int = 5, seed: int = 0) -> dict[str, Any]:
    """:func:`tests.configs.tiny_config_dict` with both families, inference measured, storage
    and artifacts under ``root``."""
    return configs.tiny_config_dict(
        name,
        study={
            "storage": f"sqlite:///{root / 'study.db'}",
            "artifacts": str(root / "artifacts"),
            "trials": trials,
            "seed": seed,
            "objectives": ["accuracy", "kgco2e"],
        },
        search=TINY_SEARCH,
        data={"dataset": "fashion-mnist"},
        carbon={"intensity_g_per_kwh": None, "region": "FRA"},
        eval={"measure_inference": True, "inference_min_duration_s": 0.05},
    )


def run_tiny(data: dict[str, Any]) -> tuple[Config, optuna.Study]:
    from nas.search import run_search

    config = config_from_dict(data)
    result = run_search(config, progress=False)
    return config, result.study


def tiny_study(
    key: str = "tiny", *, trials: int = 5, seed: int = 2, **sections: Any
) -> tuple[Config, optuna.Study]:
    """A finished tiny study (cached per ``key``); ``sections`` add/replace config tables."""
    if key not in _CACHE:
        root = Path(tempfile.mkdtemp(prefix=f"econas-{key}-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        data = tiny_config_dict(root, key, trials=trials, seed=seed)
        for name, table in sections.items():
            data[name] = {**data.get(name, {}), **table}
        _CACHE[key] = run_tiny(data)
    return _CACHE[key]
