"""Command-line parsing lives only in CLI modules: `lib/cli.py` and `lib/<room>/cli.py`.

Library functions take typed options, so pages and scripts call them without building an argv.
"""

from __future__ import annotations

import ast
from pathlib import Path

LIB = Path(__file__).resolve().parents[1] / "lib"
# Parser-building calls: a module can build a CLI from a parser it was handed without importing argparse.
PARSER_CALLS = {"add_argument", "add_argument_group", "add_mutually_exclusive_group", "add_parser", "add_subparsers",
                "parse_args", "parse_known_args"}


def is_cli_module(path: Path) -> bool:
    relative = path.relative_to(LIB)
    return relative.name == "cli.py" and len(relative.parts) <= 2


def uses_argparse(tree: ast.AST) -> bool:
    """Imports argparse, or calls a parser-building method on anything."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PARSER_CALLS:
            return True
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "argparse":
            return True
    return False


def test_only_cli_modules_use_argparse() -> None:
    offenders = sorted(
        str(path.relative_to(LIB.parent))
        for path in LIB.rglob("*.py")
        if not is_cli_module(path) and uses_argparse(ast.parse(path.read_text(), str(path)))
    )
    assert not offenders, f"argparse outside lib/cli.py and lib/<room>/cli.py: {', '.join(offenders)}"


def test_the_check_sees_every_way_to_use_argparse() -> None:
    for source in ("import argparse", "import argparse as ap", "from argparse import Namespace",
                   "def f():\n    import argparse\n", "from argparse import ArgumentParser as P",
                   "def add(commands):\n    commands.add_parser('x').add_argument('--y')\n"):
        assert uses_argparse(ast.parse(source)), source
    for source in ("import json", "from lib.cli import main", "argparse = None", "from .argparse import x",
                   "add_argument = 1", "settings.parse(args)"):
        assert not uses_argparse(ast.parse(source)), source


def test_cli_modules_are_the_top_one_and_one_per_room() -> None:
    assert is_cli_module(LIB / "cli.py") and is_cli_module(LIB / "loadgen" / "cli.py")
    assert not is_cli_module(LIB / "cloudrun" / "jobs.py") and not is_cli_module(LIB / "a" / "b" / "cli.py")
