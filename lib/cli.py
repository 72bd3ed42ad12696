"""`python -m lib <command>`: each command is a thin wrapper over one library function.

Feature modules register their commands through `add_commands(subparsers)`; a handler returns
the exit code. Commands that compute figures print them as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any, Sequence

from lib.errors import UserError

__all__ = ["main", "COMMAND_MODULES", "ProgressBar"]

# One line per feature module that contributes commands.
COMMAND_MODULES: list[str] = [
    "lib.local.cli",
    "lib.finetune.cli",
    "lib.cloudrun.cli",
    "lib.loadgen.cli",
    "lib.accuracy.cli",
    "lib.data.cli",
]


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every feature module's commands."""
    parser = argparse.ArgumentParser(prog="python -m lib", description="Pet breeds on serverless GPUs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run one command, and turn user errors into a one-line message and exit code 2."""
    from lib.local import watch_parent

    watch_parent()  # a child of the dashboard (or of `make run`) ends when its parent does
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


class ProgressBar:
    """A tqdm progress bar on stderr for long commands (never with --quiet)."""

    def __init__(self, quiet: bool, unit: str) -> None:
        self.quiet, self.unit = quiet, unit
        self._bar: Any = None
        self._name: str | None = None

    def _ensure(self, total: int | None, desc: str) -> Any:
        if self.quiet:
            return None
        if self._bar is None or self._name != desc:
            from tqdm import tqdm

            if self._bar is not None:
                self._bar.close()
            scale = self.unit == "B"
            self._bar = tqdm(total=total, desc=desc, unit=self.unit, unit_scale=scale,
                             unit_divisor=1024 if scale else 1000, file=sys.stderr, mininterval=0.5,
                             dynamic_ncols=True)
            self._name = desc
        return self._bar

    def update_eval(self, p: Any) -> None:
        bar = self._ensure(p.total, p.run_id)
        if bar is not None:
            bar.n = p.done
            bar.set_postfix(errors=p.errors, right=p.correct, refresh=False)
            bar.refresh() if p.done == p.total else bar.update(0)

    def update_download(self, p: Any) -> None:
        bar = self._ensure(p.total_bytes, p.name)
        if bar is not None:
            bar.n = p.done_bytes
            bar.update(0)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
