from __future__ import annotations

import optuna
import pytest

from tests.report.tiny_study import tiny_study


@pytest.fixture(scope="session")
def study() -> optuna.Study:
    return tiny_study("tiny")[1]


@pytest.fixture(scope="session")
def config_and_study():  # noqa: ANN201
    return tiny_study("tiny")
