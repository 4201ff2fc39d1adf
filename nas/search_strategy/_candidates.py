"""Candidate parameter sets from a search space, and their feature vectors for the surrogate."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

ENUMERATE_LIMIT = 20_000  # a finite space up to this size is scored whole


def space_size(space: Mapping[str, BaseDistribution]) -> float:
    """Number of distinct parameter sets (inf when a parameter is continuous)."""
    n = 1.0
    for dist in space.values():
        if isinstance(dist, CategoricalDistribution):
            n *= len(dist.choices)
        elif isinstance(dist, IntDistribution) and not dist.log:
            n *= (dist.high - dist.low) // dist.step + 1
        else:
            return math.inf
    return n


def candidates(
    space: Mapping[str, BaseDistribution], rng: np.random.Generator, *, pool: int
) -> list[dict[str, Any]]:
    """Every parameter set of a small finite space; else ``pool`` random draws."""
    names = sorted(space)
    if space_size(space) <= ENUMERATE_LIMIT:
        values = [_values(space[n]) for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    return [{n: _draw(space[n], rng) for n in names} for _ in range(pool)]


def _values(dist: BaseDistribution) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, IntDistribution)
    return list(range(dist.low, dist.high + 1, dist.step))


def _draw(dist: BaseDistribution, rng: np.random.Generator) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(rng.integers(len(dist.choices)))]
    if isinstance(dist, IntDistribution):
        if dist.log:
            return int(round(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high)))))
        return int(dist.low + dist.step * rng.integers((dist.high - dist.low) // dist.step + 1))
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return float(math.exp(rng.uniform(math.log(dist.low), math.log(dist.high))))
    return float(rng.uniform(dist.low, dist.high))


def features(space: Mapping[str, BaseDistribution], params: list[Mapping[str, Any]]) -> np.ndarray:
    """One row per parameter set: categorical parameters as indices (compared by equality in
    the kernel), numerical ones scaled to [0, 1] (log scale where the distribution is)."""
    names = sorted(space)
    out = np.zeros((len(params), len(names)))
    for j, n in enumerate(names):
        dist = space[n]
        for i, p in enumerate(params):
            v = p[n]
            if isinstance(dist, CategoricalDistribution):
                out[i, j] = dist.to_internal_repr(v)
            else:
                lo, hi = float(dist.low), float(dist.high)  # type: ignore[attr-defined]
                if dist.log:  # type: ignore[attr-defined]
                    v, lo, hi = math.log(v), math.log(lo), math.log(hi)
                out[i, j] = (float(v) - lo) / (hi - lo) if hi > lo else 0.0
    return out


def categorical_mask(space: Mapping[str, BaseDistribution]) -> np.ndarray:
    return np.array([isinstance(space[n], CategoricalDistribution) for n in sorted(space)])
