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
