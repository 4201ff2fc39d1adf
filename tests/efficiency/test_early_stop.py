"""Non-dominated ranks and the successive-halving rule at a rung."""

from __future__ import annotations

from nas.efficiency import nondominated_ranks, quantile, should_stop


def test_nondominated_ranks_maximise_accuracy_and_minimise_energy() -> None:
    points = [(0.9, 2.0), (0.8, 1.0), (0.7, 3.0), (0.85, 2.5), (0.6, 4.0)]
    assert nondominated_ranks(points) == [0, 0, 2, 1, 3]
    assert nondominated_ranks([(0.5, 1.0), (0.5, 1.0)]) == [0, 0]  # equal: no dominance


def test_should_stop_keeps_the_front_and_stops_the_dominated_half() -> None:
    history = [(0.9, 1.0), (0.8, 0.5), (0.85, 0.8), (0.7, 0.2)]
    assert should_stop((0.95, 0.1), history, keep=0.5, min_trials=4) == (False, "")
    stop, reason = should_stop((0.5, 3.0), history, keep=0.5, min_trials=4)
    assert stop and reason.startswith("early-stopped:")
    # dominated, but only 1 of 5 points is in a better front: kept
    spread = [(0.9, 1.0), (0.6, 2.0), (0.5, 3.0), (0.4, 4.0)]
    assert not should_stop((0.85, 1.1), spread, keep=0.5, min_trials=4)[0]
    # behind a front holding every other trial: stopped
    assert should_stop((0.84, 0.9), history, keep=0.5, min_trials=4)[0]
    # not enough trials reached the rung yet
    assert not should_stop((0.5, 3.0), history, keep=0.5, min_trials=5)[0]


def test_quantile() -> None:
    assert quantile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert quantile([1.0, 2.0], 0.25) == 1.25
