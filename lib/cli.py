"""`python -m lib <command>`: each command is a thin wrapper over one library function.

Feature modules register their commands through `add_commands(subparsers)`; a handler returns
the exit code. Commands that compute figures print them as one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from lib.errors import UserError

__all__ = ["main", "COMMAND_MODULES"]

# One line per feature module that contributes commands.
COMMAND_MODULES: list[str] = [
    "lib.localserver",
    "lib.finetune.cli",
    "lib.cloudrun.cli",
    "lib.loadgen.cli",
    "lib.eval_cli",
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
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
