"""Poller and accumulators: trapezoid integral, counter wraps, the sampling thread."""

from __future__ import annotations

import threading

import pytest

from nas.energy._poll import CounterAccumulator, Poller, TrapezoidIntegrator


def test_trapezoid_is_exact_for_a_linear_ramp() -> None:
    acc = TrapezoidIntegrator()
    acc.start(0.0, {"p": 0.0})
    for t in (1.0, 2.5, 4.0):
        acc.add(t, {"p": 10.0 * t})
    assert acc.total["p"] == pytest.approx(0.5 * 10.0 * 4.0**2)
    assert acc.samples == 4


def test_counter_accumulator_handles_wraps() -> None:
    acc = CounterAccumulator({"c": 100.0})
    acc.start(0.0, {"c": 90.0})
    acc.add(1.0, {"c": 5.0})  # +15 through the wrap
    acc.add(2.0, {"c": 25.0})  # +20
    assert acc.total["c"] == pytest.approx(35.0) and acc.wraps == 1


def test_thread_feeds_every_open_window_and_stops_after_the_last() -> None:
    reads = {"n": 0}
    sampled = threading.Event()

    def read() -> dict[str, float]:
        reads["n"] += 1
        if reads["n"] >= 4:
            sampled.set()
        return {"v": 1.0}

    poller = Poller(read=read, interval_s=0.005, name="test-poller")
    poller.open("a", a := TrapezoidIntegrator())
    poller.open("b", b := TrapezoidIntegrator())
    assert sampled.wait(timeout=10.0)
    assert poller.close("a") is a
    assert poller.close("b") is b
    assert a.samples >= 3 and b.samples >= 3  # edges plus thread samples
    assert poller._stop is None  # no window open: thread told to stop


def test_a_failing_read_in_the_thread_is_skipped() -> None:
    calls = {"n": 0}

    def read() -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("transient")
        return {"v": 2.0}

    poller = Poller(read=read, interval_s=3600.0, name="test-poller")
    poller.open("w", acc := TrapezoidIntegrator())
    poller.poll_once()  # fails: skipped
    poller.poll_once()
    poller.close("w")
    assert poller.failed_reads == 1 and acc.samples == 3


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Poller(read=dict, interval_s=0, name="x")
