"""Fixtures for the evaluation tests: synthetic photos and scripted servers (the Cloud Storage emulator is in
tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from testkit.evalkit import ScriptedServer, make_photos


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    """20 synthetic photos: 4 breeds x 5."""
    return make_photos(tmp_path / "photos")


@pytest.fixture()
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    """Start scripted servers: `scripted(answer="pug", delay_s=0.05, hang_after=5)`; stopped after the test."""
    servers: list[ScriptedServer] = []

    def start(**kwargs) -> ScriptedServer:
        servers.append(ScriptedServer(**kwargs).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
