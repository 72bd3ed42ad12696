"""`python -m lib eval ...`: accuracy of one backend on labelled photos.

A thin wrapper: parse, call `lib.accuracy.run_evaluation`, show a progress bar on stderr, print one JSON
object as the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lib.accuracy.harness import EvalOptions, run_evaluation
from lib.cli import ProgressBar
from lib.data import default_data_dir
from lib.errors import UserError
from lib.registry import Backend, read_models_toml, resolve_backend
from lib.settings import load_settings

__all__ = ["add_commands", "eval_command", "backend_from_args"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `eval`."""
    p = sub.add_parser("eval", help="measure a backend's accuracy on labelled pet photos (resumable)",
                       description="Ask a backend the breed of every labelled photo; one record per photo under "
                                   "<out>/evals/<run_id>/. Run it again after a kill: only missing photos are asked.")
    target = p.add_argument_group("target (--backend, or --url and --model)")
    target.add_argument("--backend", help="a backend name: models.toml or found by Cloud Run discovery")
    target.add_argument("--url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8100/v1")
    target.add_argument("--model", help="model name to ask (with --url)")
    target.add_argument("--role", choices=["base", "tuned"],
                        help="baseline or tuned, for the Accuracy page's default pairing (default: from models.toml)")
    p.add_argument("--data", help="folder of labelled photos, or a downloaded dataset (default: PETS_DIR)")
    p.add_argument("--split", choices=["test", "train", "all"], default="test",
                   help="test (default): the photos the shipped pets-tuned head never saw; the dataset's official "
                        "test list when the folder has annotations/")
    p.add_argument("--out", help="results root: a folder or gs://bucket/prefix (default: RESULTS_ROOT)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default 8)")
    p.add_argument("--constrained", action="store_true", help="ask for the JSON-schema constrained answer")
    p.add_argument("--limit", type=int, help="only the first N photos (one breed after another)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    p.add_argument("--attempts", type=int, default=3, help="tries per photo on timeouts and 429/503 (default 3)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--run-id", help="resume (or create) this run")
    resume.add_argument("--new", action="store_true", help="start a new run even if an unfinished one matches")
    p.add_argument("--retry-errors", action="store_true", help="when resuming, ask again photos that failed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=eval_command)


def _with_v1(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UserError(f"--url {url!r} is not an http(s) URL; e.g. http://127.0.0.1:8100/v1")
    return url.rstrip("/") + ("/v1" if parsed.path in ("", "/") else "")


def backend_from_args(args: argparse.Namespace) -> tuple[Backend, str | None]:
    """The backend to ask and its role, from `--backend` or `--url/--model`."""
    if args.backend:
        if args.url or args.model:
            raise UserError("pass either --backend or --url with --model, not both")
        backend = resolve_backend(args.backend)
        return backend, args.role or backend.role
    if not (args.url and args.model):
        raise UserError("say which model to ask: --backend NAME (from models.toml) or --url URL --model NAME")
    role = args.role
    if role is None:
        try:  # a model the registry knows keeps its role (pets-tuned is "tuned")
            role = next((b.role for b in read_models_toml() if b.model == args.model), None)
        except UserError:
            role = None
    try:
        backend = Backend(name=args.model, base_url=_with_v1(args.url), model=args.model, family="openai")
    except ValueError as exc:
        raise UserError(f"bad --url/--model: {exc}") from None
    return backend, role


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def eval_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    backend, role = backend_from_args(args)
    data = args.data or default_data_dir(settings.pets_dir)
    options = EvalOptions(
        backend=backend, data_dir=Path(data), root=args.out or settings.results_root, concurrency=args.concurrency,
        constrained=args.constrained, split=args.split, limit=args.limit, role=role, run_id=args.run_id,
        new_run=args.new, retry_errors=args.retry_errors, timeout_s=args.timeout, attempts=args.attempts,
        max_image_side=settings.max_image_side,
    )
    bar = ProgressBar(args.quiet, "photos")
    try:
        result = run_evaluation(options, progress=bar.update_eval)
    finally:
        bar.close()
    m = result.metrics
    if result.unlabelled:
        print(f"note: {result.unlabelled} images were skipped: their names do not say the breed "
              "(expected <breed_id>_<n>.jpg)", file=sys.stderr)
    if result.torn_repaired:
        print("note: the records file ended in a torn line (a crash mid-write); it was cut off and that photo "
              "asked again", file=sys.stderr)
    print(f"run {result.run_id} ({'resumed' if result.resumed else 'new'}): asked {result.asked}, "
          f"already recorded {result.skipped}")
    if m.n:
        print(f"{backend.name}: accuracy {m.accuracy:.1%} [{m.accuracy_low:.1%}, {m.accuracy_high:.1%}] on {m.n} "
              f"photos; macro-F1 {m.macro_f1:.3f}; unknown {m.unknown_rate:.1%}; errors {m.errors}")
    if m.errors:
        print(f"warning: {m.errors} photos got no answer (recorded as wrong); rerun with --retry-errors to ask "
              "them again", file=sys.stderr)
    figures = {k: _finite(v) for k, v in asdict(m).items()}
    print(json.dumps({
        **figures, "wall_s": round(result.wall_s, 3), "run_id": result.run_id, "run": result.run_url,
        "backend": backend.name, "model": backend.model, "asked": result.asked, "skipped": result.skipped,
        "resumed": result.resumed, "complete": result.complete, "torn_repaired": result.torn_repaired,
        "unlabelled": result.unlabelled,
    }))
    return 0 if result.complete else 1
