"""`python -m lib loadgen job --dry-run`: every task of the job runs the load that was asked for, option for option.

The cases come from the `loadgen` command's own parser, so an option added later is covered without editing this file.
"""

from __future__ import annotations

import argparse
import json

import pytest

from lib.cli import build_parser, main
from lib.cloudrun import split_list
from lib.loadgen.cli import run_command

IMAGE = "europe-docker.pkg.dev/p/r/pets:1"
TARGET = ["--url", "https://pets.example.run.app/v1", "--model", "pets-tuned"]
# Not load options of a task: help, the records file (the job picks it) and the task's place (Cloud Run sets it).
NOT_LOAD_OPTIONS = {"help", "out", "task_index", "task_count"}
# Free-text options whose value must parse where it is checked before the job is rendered.
TEXT_VALUES = {"ramp": "linear:1:5:10", "url": "https://other.example.run.app/v1", "images": "/mnt/photos"}


def loadgen_parser() -> argparse.ArgumentParser:
    """The parser a task's `python -m lib loadgen ...` goes through."""
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["loadgen"]


def load_options() -> list[argparse.Action]:
    return [a for a in loadgen_parser()._actions if a.option_strings and a.dest not in NOT_LOAD_OPTIONS]


def non_default(action: argparse.Action) -> tuple[list[str], object]:
    """Flags that set `action` to something other than its default, and the value the task should see."""
    flag = max(action.option_strings, key=len)
    if action.nargs == 0:
        return [flag], action.const
    if action.choices:
        text = next(str(c) for c in action.choices if c != action.default)
    elif action.type is int:
        text = str((action.default or 0) + 77)
    elif action.type is not None:  # numbers read as floats
        text = str((action.default or 0) + 2.5)
    else:
        text = TEXT_VALUES.get(action.dest, f"value-of-{action.dest}")
    return [flag, text], action.type(text) if callable(action.type) else text


def job_load_args(capsys: pytest.CaptureFixture, *flags: str) -> list[str]:
    """The `loadgen` argv inside the printed `gcloud run jobs create ... --args=...`."""
    assert main(["loadgen", "job", "--dry-run", "--image", IMAGE, *flags]) == 0
    create = json.loads(capsys.readouterr().out.splitlines()[-1])["create"]
    (packed,) = [a for a in create if a.startswith("--args=")]
    args = split_list(packed.removeprefix("--args="))
    assert args[0] == "loadgen"
    return args


def task_sees(args: list[str]) -> argparse.Namespace:
    """What a task's own `loadgen` parser makes of the job's argv."""
    parsed = build_parser().parse_args(args)
    assert parsed.func is run_command
    return parsed


@pytest.mark.parametrize("action", load_options(), ids=lambda a: max(a.option_strings, key=len))
def test_every_load_option_reaches_the_tasks(action: argparse.Action, capsys: pytest.CaptureFixture) -> None:
    flags, expected = non_default(action)
    rate = [] if action.dest in ("rate", "ramp") else ["--rate", "5"]  # one of them, or the load has no shape
    seen = task_sees(job_load_args(capsys, *TARGET, *rate, *flags))
    assert getattr(seen, action.dest) == expected != action.default


def test_the_cases_include_the_options_the_job_used_to_drop() -> None:
    flags = {max(a.option_strings, key=len) for a in load_options()}
    assert {"--constrained", "--timeout", "--client", "--spin-wait", "--max-connections"} <= flags


def test_values_left_at_their_defaults_travel_too(capsys: pytest.CaptureFixture) -> None:
    """The job's image may come from another commit, with other defaults: the job states every value."""
    args = job_load_args(capsys, *TARGET, "--rate", "5")
    stated = [max(a.option_strings, key=len) for a in load_options() if a.nargs != 0 and a.default is not None]
    assert {"--mode", "--duration", "--seed", "--timeout", "--client"} <= set(stated)
    for flag in stated:
        assert flag in args, flag


def test_photos_default_to_the_images_folder_and_text_sends_none(capsys: pytest.CaptureFixture) -> None:
    assert task_sees(job_load_args(capsys, *TARGET, "--rate", "5")).images == "/app/pets"
    text_only = job_load_args(capsys, *TARGET, "--rate", "5", "--text")
    assert "--images" not in text_only and task_sees(text_only).text is True


def test_the_task_index_and_count_are_left_to_cloud_run(capsys: pytest.CaptureFixture) -> None:
    args = job_load_args(capsys, *TARGET, "--rate", "5", "--task-index", "1", "--task-count", "4", "--tasks", "3")
    seen = task_sees(args)
    assert "--task-index" not in args and "--task-count" not in args
    assert (seen.task_index, seen.task_count) == (None, None)  # each task reads CLOUD_RUN_TASK_INDEX/COUNT
    assert seen.out == "/results/loadgen/pets-loadgen-{task}.jsonl"


def test_numbers_travel_exactly(capsys: pytest.CaptureFixture) -> None:
    seen = task_sees(job_load_args(capsys, *TARGET, "--rate", "1234567.25", "--duration", "0.1"))
    assert (seen.rate, seen.duration) == (1234567.25, 0.1)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--bucket", "b"], "--bucket: bucket 'b' is not a Cloud Storage bucket name"),
        (["--bucket", "My_Results"], "--bucket: bucket 'My_Results' is not a Cloud Storage bucket name"),
        (["--name", "Load Test"], "name 'Load Test': use lowercase letters"),
        (["--region", "mars"], "region 'mars' is not a Google Cloud region name"),
        (["--tasks", "0"], "--tasks must be at least 1"),
    ],
)
def test_bad_job_settings_get_one_line(flags: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["loadgen", "job", "--dry-run", "--image", IMAGE, *TARGET, "--rate", "5", *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err, err
    assert "validation error" not in err and "Traceback" not in err
