"""Partitions of a training set over K federated clients: IID and label-skewed Dirichlet.

Both return a list of K sorted index arrays that together cover every sample exactly once.
The Dirichlet split follows Hsu et al. 2019 ("Measuring the Effects of Non-Identical Data
Distribution for Federated Visual Classification", arXiv:1909.06335): for every class, the
share each client gets is drawn from Dir(alpha · 1_K), so a small alpha (0.1-0.5) gives each
client a few dominant labels and a large alpha tends to IID.
"""

from __future__ import annotations

import numpy as np

from nas.errors import DataError
from nas.sections.federated import SPLITS  # the names [federated] accepts

_MAX_DRAWS = 1000  # Dirichlet redraws until every client has at least min_size samples


def iid_split(n_samples: int, *, clients: int, seed: int = 0) -> list[np.ndarray]:
    """Shuffle ``range(n_samples)`` and deal it into ``clients`` near-equal shards."""
    _check(n_samples, clients, 1)
    perm = np.random.default_rng(seed).permutation(n_samples)
    return [np.sort(part) for part in np.array_split(perm, clients)]


def dirichlet_split(
    labels: np.ndarray, *, clients: int, alpha: float, seed: int = 0, min_size: int = 2
) -> list[np.ndarray]:
    """Label-skewed split: per class, client shares ~ Dir(alpha); redrawn until every client
    has at least ``min_size`` samples (a client with one sample cannot train a BatchNorm)."""
    labels = np.asarray(labels)
    if not alpha > 0:
        raise DataError(f"dirichlet alpha must be > 0, got {alpha!r}")
    _check(len(labels), clients, min_size)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(_MAX_DRAWS):
        parts: list[list[np.ndarray]] = [[] for _ in range(clients)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            shares = rng.dirichlet(np.full(clients, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].append(chunk)
        out = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        if min(len(p) for p in out) >= min_size:
            return out
    raise DataError(
        f"could not split {len(labels)} samples over {clients} clients with "
        f"Dirichlet alpha {alpha} so that each has >= {min_size}; use fewer clients, "
        "a larger alpha or more training data"
    )


def split_indices(
    labels: np.ndarray, *, clients: int, split: str, alpha: float = 0.3, seed: int = 0
) -> list[np.ndarray]:
    """Dispatch on ``split`` (``"iid"`` or ``"dirichlet"``)."""
    if split == "iid":
        return iid_split(len(labels), clients=clients, seed=seed)
    if split == "dirichlet":
        return dirichlet_split(labels, clients=clients, alpha=alpha, seed=seed)
    raise DataError(f"unknown federated split {split!r}; use one of {list(SPLITS)}")


def label_distributions(
    labels: np.ndarray, parts: list[np.ndarray], num_classes: int
) -> np.ndarray:
    """(K, num_classes) matrix: each client's label frequencies (rows sum to 1)."""
    labels = np.asarray(labels)
    counts = np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])
    return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)


def label_skew(labels: np.ndarray, parts: list[np.ndarray], num_classes: int) -> float:
    """Mean total-variation distance between each client's label distribution and the
    global one: 0 for identical distributions, up to 1 for disjoint ones."""
    dist = label_distributions(labels, parts, num_classes)
    overall = np.bincount(np.asarray(labels), minlength=num_classes) / max(len(labels), 1)
    return float(np.mean(0.5 * np.abs(dist - overall).sum(axis=1)))


def _check(n_samples: int, clients: int, min_size: int) -> None:
    if clients < 1:
        raise DataError(f"federated clients must be >= 1, got {clients}")
    if n_samples < clients * min_size:
        raise DataError(
            f"{n_samples} training samples cannot be split over {clients} clients "
            f"(each needs >= {min_size}); use fewer clients or more training data"
        )
