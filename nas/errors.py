"""Exceptions shared across econas.

The CLI maps :class:`BadInputError` (and subclasses) to exit code 2 with one line on stderr;
any other exception is an unexpected failure (exit code 1). The root classes
(:class:`EconasError`, :class:`BadInputError`, :class:`ConfigError`, :class:`InvalidArchError`)
are defined in :mod:`search_spaces.errors`, so that the leaf package ``search_spaces`` raises
them without importing ``nas``; they are the same classes here.
"""

from __future__ import annotations

from search_spaces.errors import BadInputError, ConfigError, EconasError, InvalidArchError

__all__ = [
    "BadInputError",
    "ConfigError",
    "DataError",
    "EconasError",
    "InvalidArchError",
    "MeterUnavailableError",
    "TrialFailure",
    "UnknownRegionError",
]


class DataError(BadInputError):
    """A data set name or file cannot be used."""


class MeterUnavailableError(BadInputError):
    """An energy meter the user explicitly asked for is not available on this machine."""


class UnknownRegionError(BadInputError):
    """A carbon-intensity region/country code is not known."""


class TrialFailure(EconasError):
    """A trial failed for a recorded reason (NaN loss, out of memory...); the study goes on."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
