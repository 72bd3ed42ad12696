"""Every room of `lib/` states its public face in `__init__.py` with `__all__`; code outside a room imports that
face, never the room's private modules, and modules inside a room import their siblings directly.

The one exception is a room's `cli` module: the command line's own surface, which `lib.cli` registers by name and
tests of a command may call. `python -m lib --help` starts without the training stack.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from lib.local import PARENT_FD_ENV

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib"
ROOMS = sorted(p.parent.name for p in LIB.glob("*/__init__.py"))
CALLERS = [*LIB.rglob("*.py"), *(REPO / "app_pages").glob("*.py"), REPO / "streamlit_app.py",
           *(REPO / "testkit").glob("*.py"), *(REPO / "benchmarks").glob("*.py"), *(REPO / "tests").rglob("*.py")]
HEAVY = ("torch", "transformers", "peft", "trl", "datasets", "onnxruntime", "plotly")


@dataclass(frozen=True)
class Room:
    """What a room offers: the names its face states and the modules it holds."""

    face: frozenset[str]
    modules: frozenset[str]


def rooms() -> dict[str, Room]:
    return {
        name: Room(frozenset(importlib.import_module(f"lib.{name}").__all__),
                   frozenset(p.stem for p in (LIB / name).glob("*.py") if p.stem != "__init__"))
        for name in ROOMS
    }


def room_of(path: Path) -> str | None:
    """The room a file belongs to (`lib/<room>/...`), or None for everything else."""
    parts = path.resolve().relative_to(REPO).parts
    return parts[1] if len(parts) > 2 and parts[0] == "lib" else None


def wrong_imports(tree: ast.AST, home: str | None, known: Mapping[str, Room]) -> list[str]:
    """Imports that reach past a room's face from outside, or that go through the face from inside."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bits = alias.name.split(".")
                if len(bits) > 2 and bits[0] == "lib" and bits[1] in known and bits[1] != home and bits[2] != "cli":
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            bits = node.module.split(".")
            if bits[0] != "lib" or len(bits) < 2 or bits[1] not in known:
                continue
            room = known[bits[1]]
            if len(bits) > 2:
                if bits[1] != home and bits[2] != "cli":
                    found.append(f"line {node.lineno}: from {node.module} import ... (use lib.{bits[1]})")
                continue
            for alias in node.names:
                if bits[1] == home and alias.name not in room.modules:
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name} inside the room "
                                 "(import the sibling module directly)")
                elif bits[1] != home and alias.name not in room.face:
                    found.append(f"line {node.lineno}: {alias.name} is not in lib.{bits[1]}.__all__")
    return found


@pytest.mark.parametrize("name", ROOMS)
def test_every_room_states_its_face(name: str) -> None:
    face = importlib.import_module(f"lib.{name}")
    assert isinstance(getattr(face, "__all__", None), list), f"lib/{name}/__init__.py has no __all__"
    assert len(set(face.__all__)) == len(face.__all__), f"lib.{name}.__all__ names something twice"
    missing = [n for n in face.__all__ if not hasattr(face, n)]
    assert not missing, f"lib.{name}.__all__ states names it does not define: {missing}"


def test_callers_import_a_room_through_its_face() -> None:
    known = rooms()
    offenders = [
        f"{path.relative_to(REPO)} {problem}"
        for path in CALLERS
        for problem in wrong_imports(ast.parse(path.read_text(), str(path)), room_of(path), known)
    ]
    assert not offenders, "\n".join(offenders)


def test_the_check_sees_every_way_past_a_face() -> None:
    known = {"loadgen": Room(frozenset({"LoadPlan", "run_load"}), frozenset({"engine", "cli", "send"}))}
    outside = ["from lib.loadgen.engine import LoadPlan", "import lib.loadgen.engine",
               "from lib.loadgen import engine", "from lib.loadgen import make_sender",
               "def f():\n    from lib.loadgen.send import SendResult\n"]
    for source in outside:
        assert wrong_imports(ast.parse(source), None, known), source
        assert wrong_imports(ast.parse(source), "accuracy", known), source
    assert wrong_imports(ast.parse("from lib.loadgen import LoadPlan"), "loadgen", known)  # inside: via the face
    fine_outside = ["from lib.loadgen import LoadPlan, run_load", "import lib.loadgen", "from lib.loadgen.cli import x",
                    "from lib.errors import UserError", "from lib.registry import Backend", "from .engine import x"]
    for source in fine_outside:
        assert not wrong_imports(ast.parse(source), None, known), source
    for source in ("from lib.loadgen.engine import LoadPlan", "from lib.loadgen import engine, send"):
        assert not wrong_imports(ast.parse(source), "loadgen", known), source


def test_cli_help_does_not_load_the_training_stack() -> None:
    script = ("import sys\nfrom lib.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if k != PARENT_FD_ENV}  # not a child of anything here
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: python -m lib" in done.stdout
    loaded = {name.split(".")[0] for name in done.stderr.split()}
    assert not loaded & set(HEAVY), f"`python -m lib --help` imports {sorted(loaded & set(HEAVY))}"
