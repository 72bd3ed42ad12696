"""The harness: one record per photo, bounded concurrency, resume after a kill, a backend that dies half-way,
bad photo folders, and (slow) the real local server on the shared photos, checked by an independent count."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib.accuracy import EvalOptions, Progress, evaluation_job, read_info, read_records, run_evaluation, write_info
from lib.breeds import breed_from_filename
from lib.data import select_photos
from lib.errors import UserError
from lib.registry import Backend
from lib.store import Store
from testkit.evalkit import make_photos, read_jsonl

REPO = Path(__file__).resolve().parents[2]


def backend(url: str, model: str = "m") -> Backend:
    return Backend(name=model, base_url=url, model=model, family="openai")


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lib", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def records_file(root: Path, run_id: str) -> Path:
    return root / "evals" / run_id / "records.jsonl"


def test_every_photo_gets_one_record_and_the_figures_count_them(photos: Path, tmp_path: Path, scripted) -> None:
    server = scripted(answer="It is a Pug.")
    result = run_evaluation(EvalOptions(backend(server.url), photos, str(tmp_path / "r"), concurrency=3, split="all"))
    rows = read_jsonl(records_file(tmp_path / "r", result.run_id))
    assert sorted(r["photo_id"] for r in rows) == sorted(p.stem for p in photos.glob("*.jpg"))
    assert all(r["raw"] == "It is a Pug." and r["breed"] == "pug" and r["error"] is None for r in rows)
    assert all(r["truth"] == breed_from_filename(r["photo_id"] + ".jpg") for r in rows)
    assert server.requests == 20 and result.asked == 20 and result.complete
    assert result.metrics.accuracy == 5 / 20 and result.metrics.errors == 0
    info = read_info(Store(tmp_path / "r"), result.run_id)
    assert info.finished_unix_s is not None and info.photo_count == 20 and info.split == "all"


def test_a_finished_run_asked_again_is_a_new_run_and_an_unfinished_one_resumes(photos: Path, tmp_path: Path,
                                                                               scripted) -> None:
    server = scripted(answer="pug")
    opts = EvalOptions(backend(server.url), photos, str(tmp_path), concurrency=2, split="all")
    first = run_evaluation(opts)
    second = run_evaluation(opts)
    assert second.run_id != first.run_id and not second.resumed and server.requests == 40
    # An interrupted run (a stop half-way) is picked up by the same question: only the rest is asked.
    slow = backend(scripted(answer="pug", delay_s=0.05).url)
    job = evaluation_job(EvalOptions(slow, photos, str(tmp_path / "b"), concurrency=1, split="all")).start()
    progress: Progress | None = None
    while job.running and (progress is None or progress.done < 5):
        time.sleep(0.01)
        progress = job.snapshot().progress
    job.stop()
    stopped = job.wait(10)
    assert progress is not None and progress.run_id == stopped.result.run_id and progress.total == 20
    assert stopped.state == "stopped" and not stopped.result.complete and 5 <= stopped.result.asked < 20
    done = stopped.result.asked
    again = run_evaluation(EvalOptions(slow, photos, str(tmp_path / "b"), concurrency=4, split="all"))
    assert again.run_id == stopped.result.run_id and again.resumed
    assert again.skipped == done and again.asked == 20 - done and again.complete


def test_a_backend_that_hangs_half_way_gets_error_records_not_dropped_photos(photos: Path, tmp_path: Path,
                                                                             scripted) -> None:
    hanging = scripted(answer="pug", hang_after=8)
    result = run_evaluation(EvalOptions(backend(hanging.url), photos, str(tmp_path), concurrency=4, split="all",
                                        timeout_s=0.5, attempts=1))
    rows = read_jsonl(records_file(tmp_path, result.run_id))
    assert len(rows) == 20 and result.complete
    failed = [r for r in rows if r["error"]]
    assert len(failed) == 12 and {r["error_kind"] for r in failed} == {"timeout"}
    assert all(r["breed"] == "unknown" for r in failed)
    assert result.metrics.errors == 12 and result.metrics.n == 20
    # The backend recovers: --retry-errors asks only the failed photos again; the errors stay in the file.
    healthy = scripted(answer="pug")
    again = run_evaluation(EvalOptions(backend(healthy.url), photos, str(tmp_path), split="all",
                                       run_id=result.run_id, retry_errors=True, timeout_s=0.5, attempts=1))
    assert healthy.requests == 12 and again.metrics.errors == 0 and again.metrics.n == 20
    assert len(read_jsonl(records_file(tmp_path, result.run_id))) == 32


def test_a_backend_that_is_down_is_recorded_as_errors(photos: Path, tmp_path: Path) -> None:
    result = run_evaluation(EvalOptions(backend("http://127.0.0.1:9/v1"), photos, str(tmp_path), split="all",
                                        limit=3, attempts=1))
    assert result.metrics.errors == 3 and result.metrics.accuracy == 0.0
    assert all(r["error_kind"] == "connect" for r in read_jsonl(records_file(tmp_path, result.run_id)))


def test_a_resumed_run_cuts_a_torn_line_and_asks_that_photo_again(photos: Path, tmp_path: Path, scripted) -> None:
    server = scripted(answer="pug")
    first = run_evaluation(EvalOptions(backend(server.url), photos, str(tmp_path), split="all", limit=6))
    path = records_file(tmp_path, first.run_id)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:4]) + lines[4][:25])  # crash: 4 records and half of the fifth
    info = read_info(Store(tmp_path), first.run_id)
    write_info(Store(tmp_path), type(info)(**{**info.__dict__, "finished_unix_s": None}))
    again = run_evaluation(EvalOptions(backend(server.url), photos, str(tmp_path), split="all", limit=6))
    assert again.run_id == first.run_id and again.torn_repaired and again.skipped == 4 and again.asked == 2
    rows = read_jsonl(path)
    assert len(rows) == 6 and len({r["photo_id"] for r in rows}) == 6


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: None, "no labelled pet photos found"),
    (lambda d: (d / "IMG_0001.jpg").write_bytes(b"x"), "1 images have names that do not start with a breed id"),
])
def test_a_folder_without_labelled_photos_is_a_clear_error(tmp_path: Path, make, message: str) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    make(folder)
    with pytest.raises(UserError, match=message):
        run_evaluation(EvalOptions(backend("http://127.0.0.1:9/v1"), folder, str(tmp_path / "r")))
    assert not (tmp_path / "r" / "evals").exists() or not list((tmp_path / "r" / "evals").iterdir())


def test_unlabelled_photos_beside_labelled_ones_are_skipped_and_counted(photos: Path, tmp_path: Path,
                                                                        scripted) -> None:
    (photos / "holiday.jpg").write_bytes((photos / "pug_1.jpg").read_bytes())
    result = run_evaluation(EvalOptions(backend(scripted().url), photos, str(tmp_path), split="all"))
    assert result.unlabelled == 1 and result.metrics.n == 20


def test_the_test_split_is_the_held_out_photos_and_limit_takes_one_breed_after_another(tmp_path: Path) -> None:
    folder = make_photos(tmp_path / "p", per_breed=5)
    test = select_photos(folder, "test")
    assert test.split_source == "hash" and len(test.photos) == 8  # two held out per breed
    assert {p.breed for p in select_photos(folder, "test", limit=4).photos} == {"pug", "beagle", "Bengal", "Abyssinian"}
    train = select_photos(folder, "train")
    assert not {p.id for p in train.photos} & {p.id for p in test.photos}


def test_a_downloaded_dataset_uses_the_official_test_list(tmp_path: Path) -> None:
    make_photos(tmp_path / "ds" / "images", per_breed=3)
    (tmp_path / "ds" / "annotations").mkdir()
    (tmp_path / "ds" / "annotations" / "test.txt").write_text("pug_1 26 2 11\nBengal_2 6 1 3\n")
    (tmp_path / "ds" / "annotations" / "trainval.txt").write_text("#Image CLASS-ID SPECIES BREED ID\npug_2 26 2 11\n")
    chosen = select_photos(tmp_path / "ds", "test")
    assert chosen.split_source == "official" and sorted(p.id for p in chosen.photos) == ["Bengal_2", "pug_1"]
    assert [p.id for p in select_photos(tmp_path / "ds" / "images", "train").photos] == ["pug_2"]


def test_cli_needs_a_target_and_prints_a_clear_error(tmp_path: Path) -> None:
    out = cli("eval", "--data", str(tmp_path), "--out", str(tmp_path))
    assert out.returncode == 2 and "--backend NAME" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_resume_after_a_kill_asks_only_the_missing_photos(tmp_path: Path, scripted) -> None:
    photos = make_photos(tmp_path / "photos", per_breed=10)
    server = scripted(answer="beagle", delay_s=0.05)
    args = ("eval", "--url", server.url, "--model", "m", "--data", str(photos), "--out", str(tmp_path / "r"),
            "--split", "all", "--concurrency", "2", "--quiet")
    proc = subprocess.Popen([sys.executable, "-m", "lib", *args], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    recorded: list[Path] = []
    while time.monotonic() < deadline:
        recorded = list((tmp_path / "r" / "evals").glob("*/records.jsonl"))
        if recorded and recorded[0].read_text().count("\n") >= 8:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = read_records(Store(tmp_path / "r"), recorded[0].parent.name)
    kept = {r.photo_id for r in before.records}
    assert 8 <= len(kept) < 40 and before.info.finished_unix_s is None
    asked_before = server.requests
    out = cli(*args)
    assert out.returncode == 0, out.stderr
    summary = last_json(out.stdout)
    assert summary["resumed"] and summary["run_id"] == before.info.run_id
    assert summary["skipped"] == len(kept) and summary["asked"] == 40 - len(kept)
    assert server.requests - asked_before == 40 - len(kept)  # the server saw only the missing photos
    rows = read_jsonl(recorded[0])
    assert {r["photo_id"] for r in rows} == {p.stem for p in photos.glob("*.jpg")}
    assert [r["photo_id"] for r in rows[: len(before.records)]] == [r.photo_id for r in before.records]
    assert summary["n"] == 40 and summary["accuracy"] == 0.25


@pytest.mark.slow
def test_local_server_on_the_shared_photos_matches_an_independent_count(local_server: str, pets: Path,
                                                                        tmp_path: Path) -> None:
    out = cli("eval", "--url", local_server, "--model", "pets-tuned", "--data", str(pets), "--out", str(tmp_path),
              "--limit", "40", "--concurrency", "4", "--quiet")
    assert out.returncode == 0, out.stderr
    summary = last_json(out.stdout)
    assert set(summary) >= {"n", "accuracy", "macro_f1", "unknown_rate", "errors", "wall_s"}
    rows = read_jsonl(records_file(tmp_path, summary["run_id"]))
    assert len(rows) == summary["n"] == 40 and summary["errors"] == 0
    # Independent count: the truth from the file name, the answer re-parsed from nothing but the raw text.
    from lib.breeds import parse_breed

    right = sum(parse_breed(r["raw"]) == breed_from_filename(r["photo_id"] + ".jpg") for r in rows)
    assert summary["accuracy"] == right / 40
    assert len({r["truth"] for r in rows}) == 37  # --limit takes one breed after another
    info = read_info(Store(tmp_path), summary["run_id"])
    assert info.role == "tuned" and info.split == "test" and info.concurrency == 4
