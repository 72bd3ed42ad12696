"""`python -m lib serve-local`: the embedded CPU models behind an OpenAI-compatible server."""

from __future__ import annotations

import argparse
from pathlib import Path

from lib.local.server import serve
from lib.settings import load_settings

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `serve-local`."""
    p = sub.add_parser("serve-local", help="serve pets-base and pets-tuned on the CPU (OpenAI-compatible)")
    p.add_argument("--host", default=None, help="default LOCAL_MODELS_HOST or 127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default LOCAL_MODELS_PORT or 8100")
    p.add_argument("--artifacts", type=Path, default=None, help="folder with the trained head (head.npz)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per inference")
    p.add_argument("--workers", type=int, default=1, help="inferences run at once")
    p.add_argument("--max-queue", type=int, default=32, help="requests that may wait; more get 503 + Retry-After")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    serve(args.host or settings.local_host, args.port or settings.local_port, args.artifacts, args.threads,
          args.workers, args.max_queue)
    return 0
