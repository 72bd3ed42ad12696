"""`python -m lib serve-local` (the embedded CPU models behind an OpenAI-compatible server) and
`python -m lib dashboard` (that server plus the dashboard, as `make run` starts them)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lib.local.process import launch_dashboard
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

    d = sub.add_parser("dashboard", help="the local model server and the dashboard together (what `make run` does)",
                       description="Start the local model server, then the Streamlit dashboard; both stop together "
                                   "(Ctrl-C, a crash or kill -9 of the dashboard). Extra arguments after -- go to "
                                   "`streamlit run`.")
    d.add_argument("--host", default="127.0.0.1", help="dashboard address (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=int, default=8501, help="dashboard port (default 8501)")
    d.add_argument("--local-host", default=None, help="model server address (default LOCAL_MODELS_HOST or 127.0.0.1)")
    d.add_argument("--local-port", type=int, default=None, help="model server port (default LOCAL_MODELS_PORT or 8100)")
    d.add_argument("streamlit_args", nargs=argparse.REMAINDER, help="-- then options for `streamlit run`")
    d.set_defaults(func=_dashboard)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    serve(args.host or settings.local_host, args.port or settings.local_port, args.artifacts, args.threads,
          args.workers, args.max_queue)
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    settings = load_settings()
    extra = tuple(a for a in args.streamlit_args if a != "--")
    launch_dashboard(host=args.host, port=args.port, local_host=args.local_host or settings.local_host,
                     local_port=args.local_port or settings.local_port, streamlit_args=extra)
