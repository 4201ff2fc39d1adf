"""Fixtures of the carbon tests: the live providers' loopback server (tests/scheduling/loopback.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scheduling.loopback import Loopback


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    server = Loopback()
    try:
        yield server
    finally:
        server.close()
