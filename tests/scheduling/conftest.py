"""Fixtures of the scheduling tests: the providers' loopback server."""

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
