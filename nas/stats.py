"""Small statistics econas uses in several places: rank correlation and quantiles.

Pure Python (no numpy or torch), so the readers that use them stay cheap to import.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 0, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2.0
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); pairs with a NaN/inf are dropped.

    NaN when fewer than three pairs are left or either side is constant.
    """
    pairs = [(u, v) for u, v in zip(a, b, strict=True) if math.isfinite(u) and math.isfinite(v)]
    if len(pairs) < 3:
        return float("nan")
    ra, rb = ranks([p[0] for p in pairs]), ranks([p[1] for p in pairs])
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    da, db = [r - ma for r in ra], [r - mb for r in rb]
    denom = math.sqrt(sum(x * x for x in da) * sum(y * y for y in db))
    return sum(x * y for x, y in zip(da, db, strict=True)) / denom if denom > 0 else float("nan")


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated ``q`` quantile of ``values`` (non-empty)."""
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b between two rankings (ties handled); NaN with fewer than two pairs or a
    constant side."""
    pairs = [(u, v) for u, v in zip(a, b, strict=True) if math.isfinite(u) and math.isfinite(v)]
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(pairs)):
        for j in range(i + 1, len(pairs)):
            da = pairs[i][0] - pairs[j][0]
            db = pairs[i][1] - pairs[j][1]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    n_a = concordant + discordant + ties_a
    n_b = concordant + discordant + ties_b
    if len(pairs) < 2 or n_a == 0 or n_b == 0:
        return float("nan")
    return (concordant - discordant) / math.sqrt(n_a * n_b)


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (non-empty)."""
    return quantile(values, 0.5)


def bootstrap_ci(
    values: Sequence[float],
    statistic: str = "median",
    *,
    level: float = 0.95,
    resamples: int = 4000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median (or mean) of ``values``.

    Seeded, so a results file regenerates to the same interval from the same samples. With
    one value the interval is that value: nothing is resolved by a single round."""
    import random

    if not values:
        raise ValueError("bootstrap_ci needs at least one value")
    stat = median if statistic == "median" else (lambda v: sum(v) / len(v))
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = random.Random(seed)
    n = len(values)
    draws = sorted(stat([values[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    alpha = (1.0 - level) / 2.0
    return quantile(draws, alpha), quantile(draws, 1.0 - alpha)


def t_interval(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of ``values`` (at least two)."""
    n = len(values)
    if n < 2:
        raise ValueError("t_interval needs at least two values")
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = _t_quantile(1.0 - (1.0 - level) / 2.0, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def _t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t (bisection on the regularised incomplete beta CDF)."""
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if _t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def _t_cdf(t: float, df: int) -> float:
    x = df / (df + t * t)
    return 1.0 - 0.5 * _betainc(df / 2.0, 0.5, x)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b) by its continued fraction (Numerical Recipes)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
            c = 1.0 + num / c
            c = c if abs(c) > 1e-300 else 1e-300
            h *= d * c
    return front * h / a


def verdict(interval: tuple[float, float], target: float, *, higher_is_better: bool) -> str:
    """``met`` when the whole interval is on the good side of ``target``, ``not met`` when it
    is wholly on the bad side, else ``unresolved``: a point estimate never decides."""
    lo, hi = interval
    if higher_is_better:
        return "met" if lo >= target else ("not met" if hi < target else "unresolved")
    return "met" if hi <= target else ("not met" if lo > target else "unresolved")


def median_ci(values: Sequence[float], *, level: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free interval of the median: the order statistics ``(x_(k), x_(n-k+1))``
    with the largest ``k`` whose binomial coverage is at least ``level``; returns
    ``(lo, hi, coverage)``. Below six values no pair reaches 95%: the whole range is returned
    with its (lower) coverage, which :func:`verdict` callers must treat as unresolved."""
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("median_ci needs at least one value")

    def coverage(k: int) -> float:  # P(x_(k) <= median <= x_(n-k+1)) for k from 1
        return 1.0 - 2.0 * sum(math.comb(n, i) for i in range(k)) / 2.0**n

    k = 1
    while k + 1 <= n // 2 and coverage(k + 1) >= level:
        k += 1
    return s[k - 1], s[n - k], coverage(k)


def wilson_interval(hits: int, n: int, *, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a proportion ``hits / n`` (95% by default): the interval a
    share such as "80% of trials within 30%" must clear, not its point value."""
    if n <= 0 or not 0 <= hits <= n:
        raise ValueError(f"wilson_interval needs 0 <= hits <= n and n > 0, got {hits}/{n}")
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
