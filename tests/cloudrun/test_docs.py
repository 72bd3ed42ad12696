"""README.md ("Deploy Gemma on Cloud Run", "Fine-tune on Cloud Run Jobs", "Host the dashboard on Cloud Run"):
every `python -m lib ... --dry-run` block, run again, prints exactly the gcloud block under it."""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path

import pytest

from lib.cli import main

DOC = Path(__file__).resolve().parents[2] / "README.md"


def dry_run_pairs() -> list[tuple[str, str]]:
    blocks = re.findall(r"```bash\n(.*?)\n```", DOC.read_text(), flags=re.S)
    return [(cmd, out) for cmd, out in itertools.pairwise(blocks)
            if cmd.startswith("python -m lib") and "--dry-run" in cmd and out.startswith("gcloud")]


def test_the_doc_has_the_gpu_and_job_examples() -> None:
    commands = [cmd for cmd, _ in dry_run_pairs()]
    assert len(commands) == 6
    assert sum(c.startswith("python -m lib deploy dashboard") for c in commands) == 1
    assert sum("nvidia-l4" in c for c in commands) == 1 and sum("nvidia-rtx-pro-6000" in c for c in commands) == 2
    assert any(c.startswith("python -m lib finetune submit") for c in commands)


@pytest.mark.parametrize("command, expected", dry_run_pairs(), ids=lambda v: v.split(" \\")[0][:60])
def test_documented_commands_are_what_the_dry_run_prints(
    command: str, expected: str, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("GOOGLE_CLOUD_PROJECT", "CLOUD_RUN_REGION", "CLOUD_RUN_API_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    argv = shlex.split(command.replace("\\\n", " "))[3:]  # backslash-newline: line continuation
    assert main(argv) == 0
    printed = capsys.readouterr().out.rstrip("\n").splitlines()[:-1]  # the last line is the JSON summary
    assert "\n".join(printed) == expected
