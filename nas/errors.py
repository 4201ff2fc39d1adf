"""Exceptions shared across econas.

The CLI maps :class:`BadInputError` (and subclasses) to exit code 2 with one line on stderr;
any other exception is an unexpected failure (exit code 1).
"""

from __future__ import annotations


class EconasError(Exception):
    """Base class of every error econas raises on purpose."""


class BadInputError(EconasError, ValueError):
    """A user-supplied input (config, argument, data file, storage URL) is wrong.

    The message must name the problem in one line; the CLI prints it and exits with 2.
    """


class ConfigError(BadInputError):
    """A study config is malformed (unknown key, wrong type, bad value)."""


class DataError(BadInputError):
    """A data set name or file cannot be used."""


class MeterUnavailableError(BadInputError):
    """An energy meter the user explicitly asked for is not available on this machine."""


class UnknownRegionError(BadInputError):
    """A carbon-intensity region/country code is not known."""


class InvalidArchError(EconasError):
    """A sampled architecture is an impossible combination (e.g. dim not divisible by heads).

    Not a user-input error: the trial is rejected before training and the study goes on.
    """


class TrialFailure(EconasError):
    """A trial failed for a recorded reason (NaN loss, out of memory...); the study goes on."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
