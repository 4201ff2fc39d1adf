"""Small statistics helpers whose figures decide verdicts."""

from __future__ import annotations

import pytest

from nas.stats import wilson_interval


def test_the_wilson_interval_matches_the_textbook_values() -> None:
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    lo, hi = wilson_interval(46, 48)
    assert lo == pytest.approx(0.860, abs=1e-3) and hi == pytest.approx(0.989, abs=1e-3)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
