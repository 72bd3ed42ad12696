"""Constants and helpers shared by the browser tests and their fixtures."""

from __future__ import annotations

import socket

from dockerimage import REPO

OUTPUT = REPO / "test-output" / "e2e"  # screenshots, timings, dashboard logs (gitignored)
TOKEN = "e2e-presenter-token-7f3a"  # the tests' stand-in for the Secret Manager value
PRESENTER = "presenter@example.com"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
