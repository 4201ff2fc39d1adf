"""Shared by every test: a private meter registry per test session.

Machine-wide meters split their readings among the econas processes registered on the host
(``nas.energy``); the tests' own processes must not count a developer's running study, nor
it theirs.
"""

from __future__ import annotations

import os
import tempfile

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_meter_registry() -> None:
    if "ECONAS_METER_REGISTRY" not in os.environ:
        os.environ["ECONAS_METER_REGISTRY"] = tempfile.mkdtemp(prefix="econas-test-meters-")
