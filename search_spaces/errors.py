"""The errors a search space raises: econas's own classes, defined in this leaf package.

``search_spaces`` imports nothing from ``nas`` (it sits below it), so the root of econas's
error hierarchy lives here and :mod:`nas.errors` re-exports it: ``nas.errors.ConfigError is
search_spaces.errors.ConfigError``. A bad search option is therefore the ``ConfigError`` the
CLI maps to exit code 2, and an impossible spec the ``InvalidArchError`` a study survives.
"""

from __future__ import annotations

__all__ = ["BadInputError", "ConfigError", "EconasError", "InvalidArchError"]


class EconasError(Exception):
    """Base class of every error econas raises on purpose."""


class BadInputError(EconasError, ValueError):
    """A user-supplied input (config, argument, data file, storage URL) is wrong.

    The message must name the problem in one line; the CLI prints it and exits with 2.
    """


class ConfigError(BadInputError):
    """A study config is malformed (unknown key, wrong type, bad value)."""


class InvalidArchError(EconasError):
    """A sampled architecture is an impossible combination (e.g. dim not divisible by heads).

    Not a user-input error: the trial is rejected before training and the study goes on.
    """
