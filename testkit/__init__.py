"""Helpers shared by test modules (a unique module name: every test folder has its own conftest)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pets_dir() -> Path:
    """PETS_DIR, or the shared photos beside the checkout."""
    return Path(os.environ.get("PETS_DIR") or REPO.parent / "shared" / "pets").resolve()


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
