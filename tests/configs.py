"""One tiny study config for every test: a dict, a :class:`~nas.config.Config` or a TOML file.

    doc = tiny_config_dict("budget", data={"batch_size": 100})
    doc = tiny_config_dict("fra", carbon={"intensity_g_per_kwh": None, "region": "FRA"})
    config = tiny_config("fed", federated={"enabled": True, "clients": 2})
    path = tiny_toml(tmp_path, "faults", train={"epochs": 2})  # tmp_path / "faults.toml"

The base (:data:`TINY`) is one small CNN on Fashion-MNIST slices (200 train, 100 val, 100
test images, batch 50, one epoch), no baselines (``search={"baselines": None}`` enqueues the
default ones that fit), the cost guard recording but not refusing (``allow_costly``), a random
sampler, the CPU-time estimate meter and a fixed
50 gCO2e/kWh, without inference measurement: a trial takes about a second. Each keyword is a
section whose keys are merged into the base, recursively (``search={"cnn": {...}}`` changes
the CNN options only); a key set to ``None`` is removed (back to the section's default), a
section set to ``None`` is removed whole. ``name`` is ``study.name``. Nothing is shared
between calls: every call returns fresh dicts.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from nas.config import Config, config_from_dict, load_config

__all__ = [
    "TINY",
    "TINY_CNN",
    "TINY_VIT",
    "load_tiny",
    "tiny_config",
    "tiny_config_dict",
    "tiny_toml",
    "to_toml",
]

TINY_CNN: dict[str, Any] = {
    "max_stages": 1,
    "stem_width_choices": [8],
    "width_choices": [8, 16],
    "depth_choices": [1],
    "kernel_choices": [3],
}
TINY_VIT: dict[str, Any] = {  # for search={"spaces": ["cnn", "vit"], "vit": TINY_VIT}
    "patch_choices": [7],
    "dim_choices": [16],
    "heads_choices": [2],
    "depth_choices": [1],
    "mlp_ratio_choices": [2],
}
TINY: dict[str, Any] = {
    "study": {"name": "tiny", "sampler": "random", "trials": 4, "seed": 0},
    "search": {"spaces": ["cnn"], "cnn": TINY_CNN, "baselines": [], "allow_costly": True},
    "data": {"train_size": 200, "val_size": 100, "test_size": 100, "batch_size": 50},
    "train": {"epochs": 1},
    "hardware": {"device": "cpu", "meter": "estimate"},
    "carbon": {"intensity_g_per_kwh": 50.0},
    "eval": {"measure_inference": False},
}


def _merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def tiny_config_dict(name: str = "tiny", **sections: dict[str, Any] | None) -> dict[str, Any]:
    """The base with ``sections`` merged in and ``study.name = name`` (see the module docstring)."""
    doc = _merge(TINY, sections)
    doc.setdefault("study", {})["name"] = name
    return doc


def tiny_config(name: str = "tiny", **sections: dict[str, Any] | None) -> Config:
    """:func:`tiny_config_dict` parsed and checked (bad values raise ConfigError)."""
    return config_from_dict(tiny_config_dict(name, **sections))


def tiny_toml(
    directory: Path, name: str = "tiny", *, extra: str = "", **sections: dict[str, Any] | None
) -> Path:
    """``directory / f"{name}.toml"`` holding :func:`tiny_config_dict`; ``extra`` is raw TOML
    appended (tables the dict does not have), for tests that write a section by hand."""
    path = Path(directory) / f"{name}.toml"
    path.write_text(to_toml(tiny_config_dict(name, **sections)) + extra, encoding="utf-8")
    return path


def load_tiny(directory: Path, name: str = "tiny", **sections: dict[str, Any] | None) -> Config:
    """:func:`tiny_toml` read back with :func:`nas.config.load_config` (paths resolved
    relative to the file, as ``econas`` does)."""
    return load_config(tiny_toml(directory, name, **sections))


def to_toml(doc: dict[str, Any]) -> str:
    """A config dict (tables of str, bool, int, finite float and lists of them) as TOML."""
    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any]) -> None:
        scalars = {k: v for k, v in d.items() if not isinstance(v, dict)}
        if prefix and (scalars or not any(isinstance(v, dict) for v in d.values())):
            lines.append(f"[{prefix}]")
            lines.extend(f"{k} = {_value(v)}" for k, v in scalars.items())
            lines.append("")
        for k, v in d.items():
            if isinstance(v, dict):
                table(f"{prefix}.{k}" if prefix else k, v)

    table("", doc)
    return "\n".join(lines)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"to_toml: {v!r} is not finite; write it by hand")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string: JSON's escapes are TOML's
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"to_toml: cannot write {type(v).__name__}")
