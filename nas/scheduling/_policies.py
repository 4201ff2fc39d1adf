"""Scheduling policies: given a job's arrival, length, deadline window and a forecast, pick slots.

Every policy works on a batch of jobs at once (the simulator replays a year of hourly
arrivals in one call) and returns a boolean mask of the slots each job runs in. For one job,
:meth:`Policy.plan` turns the mask into a schedule: a list of ``(region, start, end)``
intervals. The realised emissions are always evaluated on the actual trace, not the forecast.

Policies (CLI names):

- ``run-now``: start at arrival in the home region (the first trace); the baseline.
- ``flexible-start``: one contiguous run starting within ``[arrival, arrival + window - job]``
  that minimises the forecast mean intensity (earliest start on ties).
- ``pause-resume``: the job is interruptible at slot boundaries; run in the ``job`` slots with
  the lowest forecast before the deadline (earliest slots on ties).
- ``spatial``: the job can run in any region; one contiguous run in the (region, start) pair
  with the lowest forecast mean, i.e. spatial shifting combined with flexible start. With
  ``window == job`` this is pure spatial shifting: run now in the greenest forecast region.
  Ties go to the home region, then the earliest start.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import ClassVar, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from nas.carbon import to_datetime, to_epoch_s
from nas.errors import BadInputError

__all__ = [
    "POLICIES",
    "FlexibleStart",
    "PauseResume",
    "Policy",
    "RunNow",
    "ScheduledInterval",
    "Spatial",
    "create_policy",
    "mask_to_schedule",
]


class ScheduledInterval(NamedTuple):
    """One stretch of running: in ``region`` from ``start`` to ``end`` (UTC-aware)."""

    region: str
    start: datetime
    end: datetime

    @property
    def duration_s(self) -> float:
        return (self.end - self.start).total_seconds()


def _window_sums(forecast: np.ndarray, job_slots: int) -> np.ndarray:
    """Sum of every ``job_slots``-long contiguous run along the last axis."""
    return sliding_window_view(forecast, job_slots, axis=-1).sum(axis=-1)


def _contiguous_mask(
    shape: tuple[int, ...], region: np.ndarray, start: np.ndarray, job_slots: int
) -> np.ndarray:
    """Mask with ``job_slots`` consecutive slots from ``start[j]`` in ``region[j]`` per job."""
    mask = np.zeros(shape, dtype=bool)
    cols = start[:, None] + np.arange(job_slots)[None, :]  # (n, job)
    rows = np.broadcast_to(np.arange(shape[0])[:, None], cols.shape)
    mask[rows, np.broadcast_to(region[:, None], cols.shape), cols] = True
    return mask


class Policy(abc.ABC):
    """Chooses, for each job, the slots it runs in from a forecast of its deadline window.

    :meth:`choose` gets ``forecast`` of shape ``(n_jobs, n_regions, window_slots)``: slot 0 is
    the arrival slot, the window ends at the deadline, region 0 is the home region. It returns
    a boolean mask of the same shape with exactly ``job_slots`` True values per job.
    """

    name: ClassVar[str]
    multi_region: ClassVar[bool] = False  # may run outside the home region
    contiguous: ClassVar[bool] = True  # one uninterrupted run (False: may pause and resume)

    def choose(self, forecast: np.ndarray, *, job_slots: int) -> np.ndarray:
        forecast = np.asarray(forecast, dtype=np.float64)
        if forecast.ndim != 3:
            raise ValueError("forecast must have shape (n_jobs, n_regions, window_slots)")
        if job_slots < 1:
            raise BadInputError(f"the job must last at least one slot, got {job_slots}")
        if forecast.shape[2] < job_slots:
            raise BadInputError(
                f"window of {forecast.shape[2]} slots is shorter than the job ({job_slots} slots)"
            )
        return self._choose(forecast, job_slots)

    @abc.abstractmethod
    def _choose(self, forecast: np.ndarray, job_slots: int) -> np.ndarray: ...

    def plan(
        self,
        *,
        arrival: datetime,
        job_duration_s: float,
        window_s: float,
        forecast: np.ndarray,
        slot_s: int,
        regions: tuple[str, ...] = ("home",),
    ) -> list[ScheduledInterval]:
        """Schedule of one job arriving at ``arrival`` (a slot boundary).

        ``forecast`` has shape ``(n_regions, >= window slots)``; the job takes
        ``ceil(job_duration_s / slot_s)`` slots and must end by ``arrival + window_s``.
        """
        job_slots = max(1, int(np.ceil(job_duration_s / slot_s - 1e-9)))
        window_slots = int(np.floor(window_s / slot_s + 1e-9))
        fc = np.asarray(forecast, dtype=np.float64)
        if fc.ndim == 1:
            fc = fc[None, :]
        if fc.shape[0] != len(regions) or fc.shape[1] < window_slots:
            raise ValueError("forecast must have one row per region covering the window")
        mask = self.choose(fc[None, :, :window_slots], job_slots=job_slots)[0]
        return mask_to_schedule(mask, arrival=arrival, slot_s=slot_s, regions=regions)


class RunNow(Policy):
    name = "run-now"

    def _choose(self, forecast: np.ndarray, job_slots: int) -> np.ndarray:
        mask = np.zeros(forecast.shape, dtype=bool)
        mask[:, 0, :job_slots] = True
        return mask


class FlexibleStart(Policy):
    name = "flexible-start"

    def _choose(self, forecast: np.ndarray, job_slots: int) -> np.ndarray:
        sums = _window_sums(forecast[:, 0, :], job_slots)  # (n, window - job + 1)
        start = np.argmin(sums, axis=1)
        region = np.zeros(forecast.shape[0], dtype=np.int64)
        return _contiguous_mask(forecast.shape, region, start, job_slots)


class PauseResume(Policy):
    name = "pause-resume"
    contiguous = False

    def _choose(self, forecast: np.ndarray, job_slots: int) -> np.ndarray:
        order = np.argsort(forecast[:, 0, :], axis=1, kind="stable")[:, :job_slots]
        mask = np.zeros(forecast.shape, dtype=bool)
        mask[np.arange(forecast.shape[0])[:, None], 0, order] = True
        return mask


class Spatial(Policy):
    name = "spatial"
    multi_region = True

    def _choose(self, forecast: np.ndarray, job_slots: int) -> np.ndarray:
        sums = _window_sums(forecast, job_slots)  # (n, regions, window - job + 1)
        n, _, starts = sums.shape
        best = np.argmin(sums.reshape(n, -1), axis=1)  # region-major: home region wins ties
        return _contiguous_mask(forecast.shape, best // starts, best % starts, job_slots)


POLICIES = ("run-now", "flexible-start", "pause-resume", "spatial")


def create_policy(name: str | Policy) -> Policy:
    """A policy by CLI name: ``run-now``, ``flexible-start``, ``pause-resume``, ``spatial``."""
    if isinstance(name, Policy):
        return name
    table: dict[str, type[Policy]] = {
        cls.name: cls for cls in (RunNow, FlexibleStart, PauseResume, Spatial)
    }
    if name not in table:
        raise BadInputError(f"unknown policy {name!r}; choose from {', '.join(POLICIES)}")
    return table[name]()


def mask_to_schedule(
    mask: np.ndarray, *, arrival: datetime | float, slot_s: int, regions: tuple[str, ...]
) -> list[ScheduledInterval]:
    """Merge a (regions, slots) run mask into time-ordered ``(region, start, end)`` intervals."""
    t0 = to_epoch_s(arrival)
    out: list[tuple[float, ScheduledInterval]] = []
    for r, row in enumerate(np.asarray(mask, dtype=bool)):
        padded = np.concatenate(([False], row, [False])).astype(np.int8)
        edges = np.diff(padded)
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            start, end = t0 + int(a) * slot_s, t0 + int(b) * slot_s
            out.append((start, ScheduledInterval(regions[r], to_datetime(start), to_datetime(end))))
    return [interval for _, interval in sorted(out, key=lambda item: item[0])]
