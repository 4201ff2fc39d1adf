"""A small Gaussian process over mixed categorical/numerical parameters (numpy only).

Kernel: ``exp(-(hamming(x, x') / l_cat + ||x - x'||^2 / l_num^2))`` on the categorical and the
scaled numerical features; constant mean; targets standardised. The length scale and noise
are chosen by marginal likelihood over a small grid, so the fit is deterministic and takes
milliseconds for the few hundred observations a search has.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LENGTHS = (0.5, 1.0, 2.0, 4.0, 8.0)
NOISES = (1e-3, 1e-2, 0.05, 0.2, 0.5)


def _distances(a: np.ndarray, b: np.ndarray, cat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ham = (a[:, None, cat] != b[None, :, cat]).sum(-1).astype(float)
    num = ((a[:, None, ~cat] - b[None, :, ~cat]) ** 2).sum(-1)
    return ham, num


@dataclass
class GaussianProcess:
    """Fitted on ``x`` (features) and ``y`` (one objective); :meth:`predict` gives mean, std."""

    x: np.ndarray
    cat: np.ndarray
    length: float
    noise: float
    mean: float
    scale: float
    chol: np.ndarray
    alpha: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, cat: np.ndarray) -> GaussianProcess:
        mean = float(y.mean())
        scale = float(y.std()) or 1.0
        z = (y - mean) / scale
        ham, num = _distances(x, x, cat)
        best: tuple[float, float, float, np.ndarray, np.ndarray] | None = None
        for length in LENGTHS:
            k = np.exp(-(ham / length + num / length**2))
            for noise in NOISES:
                try:
                    chol = np.linalg.cholesky(k + noise * np.eye(len(z)))
                except np.linalg.LinAlgError:
                    continue
                alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, z))
                loglik = -0.5 * float(z @ alpha) - float(np.log(np.diag(chol)).sum())
                if best is None or loglik > best[0]:
                    best = (loglik, length, noise, chol, alpha)
        assert best is not None  # the largest noise always factorises
        _, length, noise, chol, alpha = best
        return cls(x, cat, length, noise, mean, scale, chol, alpha)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ham, num = _distances(x, self.x, self.cat)
        ks = np.exp(-(ham / self.length + num / self.length**2))
        mu = ks @ self.alpha
        v = np.linalg.solve(self.chol, ks.T)
        var = np.maximum(1e-12, 1.0 - (v * v).sum(0))
        return self.mean + self.scale * mu, self.scale * np.sqrt(var)
