from __future__ import annotations

import numpy as np
import pytest

from nas.errors import DataError
from nas.federated import dirichlet_split, iid_split, label_distributions, label_skew


def _labels(n: int = 1000, classes: int = 10) -> np.ndarray:
    return np.random.default_rng(1).integers(0, classes, size=n)


def _covers_once(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n
    assert np.array_equal(np.sort(joined), np.arange(n))


def test_iid_split_covers_every_sample_once_in_equal_shards() -> None:
    parts = iid_split(1003, clients=4, seed=0)
    _covers_once(parts, 1003)
    assert {len(p) for p in parts} <= {250, 251}


def test_dirichlet_split_covers_every_sample_once_and_is_non_iid() -> None:
    labels = _labels()
    parts = dirichlet_split(labels, clients=6, alpha=0.3, seed=0)
    _covers_once(parts, len(labels))
    assert min(len(p) for p in parts) >= 2
    dist = label_distributions(labels, parts, 10)
    assert np.allclose(dist.sum(axis=1), 1.0)
    iid = iid_split(len(labels), clients=6, seed=0)
    # Label distributions differ measurably between clients under Dirichlet(0.3)...
    skew_dir, skew_iid = label_skew(labels, parts, 10), label_skew(labels, iid, 10)
    assert skew_dir > 0.3 > 0.1 > skew_iid
    # ...and some client misses a label almost entirely, which IID shards never do.
    assert dist.min() < 0.02 and label_distributions(labels, iid, 10).min() > 0.03
    # alpha large tends to IID
    wide = dirichlet_split(labels, clients=6, alpha=1000.0, seed=0)
    assert label_skew(labels, wide, 10) < 0.1


def test_dirichlet_split_is_reproducible_per_seed() -> None:
    labels = _labels()
    a = dirichlet_split(labels, clients=5, alpha=0.5, seed=3)
    b = dirichlet_split(labels, clients=5, alpha=0.5, seed=3)
    c = dirichlet_split(labels, clients=5, alpha=0.5, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_impossible_splits_are_data_errors() -> None:
    with pytest.raises(DataError, match="cannot be split over 8 clients"):
        dirichlet_split(_labels(10), clients=8, alpha=0.3)
    with pytest.raises(DataError, match="alpha must be > 0"):
        dirichlet_split(_labels(), clients=2, alpha=0.0)
    with pytest.raises(DataError, match="clients must be >= 1"):
        iid_split(10, clients=0)
