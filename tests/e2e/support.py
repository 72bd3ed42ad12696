"""Constants and helpers shared by the browser tests and their fixtures."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from pathlib import Path

from testkit import free_port

__all__ = ["OUTPUT", "TOKEN", "PRESENTER", "free_port", "CuttableProxy"]

# Screenshots, timings and dashboard logs: TEST_OUTPUT_DIR when set (CI keeps it), else a temp folder;
# never the checkout.
OUTPUT = Path(os.environ.get("TEST_OUTPUT_DIR") or Path(tempfile.gettempdir()) / "pets-test-output") / "e2e"
TOKEN = "e2e-presenter-token-7f3a"  # the tests' stand-in for the Secret Manager value
PRESENTER = "presenter@example.com"


class CuttableProxy:
    """A TCP proxy on loopback whose open connections can be cut, as Cloud Run cuts a WebSocket at its timeout."""

    def __init__(self, target_port: int) -> None:
        import threading

        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self._lock:
                self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> int:
        """Close every open connection (new ones are still accepted); returns how many were cut."""
        with self._lock:
            cut, self._open = self._open, []
        for s in cut:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        return len(cut) // 2

    def close(self) -> None:
        self._closed = True
        self.cut()
        self.listener.close()
