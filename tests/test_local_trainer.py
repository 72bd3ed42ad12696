"""The local trainer: trains a real head that the real server loads, and counts its held-out figures exactly as
the harness counts them through that server; bad input is a clear error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from lib.accuracy import EvalOptions, read_records, run_evaluation
from lib.breeds import BREED_IDS
from lib.data import held_out_split
from lib.errors import UserError
from lib.finetune import fit_head, train_local
from lib.local import Features, TunedHead, start_local_server
from lib.registry import Backend
from lib.store import Store
from testkit import REPO, free_port


def test_fit_head_learns_a_separable_toy_problem() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(len(BREED_IDS), 1280)) * 3
    feats = [Features(centres[i % 37][None] + rng.normal(size=(1, 1280)), np.zeros((1, 1000))) for i in range(111)]
    head, loss = fit_head(feats, [i % 37 for i in range(111)], steps=300)
    assert loss < 0.5
    test = [Features(centres[i][None] + rng.normal(size=(1, 1280)), np.zeros((1, 1000))) for i in range(37)]
    assert sum(head.answer(f)[0] == BREED_IDS[i] for i, f in enumerate(test)) >= 35


def test_a_folder_without_every_breed_is_refused(tmp_path: Path, pets: Path) -> None:
    for src in sorted(pets.glob("pug_*.jpg"))[:3]:
        shutil.copy(src, tmp_path / src.name)
    with pytest.raises(UserError, match="no training photos for 36 breeds"):
        train_local(tmp_path, tmp_path / "out")


def test_a_missing_head_says_how_to_train_one(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="python -m lib finetune local"):
        TunedHead.load(tmp_path)


def test_cli_without_data_is_a_one_line_error(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "lib", "finetune", "local", "--data", str(tmp_path / "nope")],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().startswith("error:") and "no such folder" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.slow
def test_cli_trains_a_head_that_the_server_loads(tmp_path: Path, pets: Path) -> None:
    out = tmp_path / "head"
    run = subprocess.run([sys.executable, "-m", "lib", "finetune", "local", "--data", str(pets), "--out", str(out),
                          "--steps", "600"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["n_train"] == 185 and summary["n_test"] == 74
    assert summary["test_accuracy"] > summary["base_test_accuracy"] + 0.1
    assert {"head.npz", "head.json", "metrics.json", "MODEL_CARD.md"} <= {p.name for p in out.iterdir()}
    head = TunedHead.load(out)
    shipped = TunedHead.load(REPO / "artifacts" / "pets-tuned")
    assert head.weight.shape == shipped.weight.shape
    # The server serves the freshly trained head from --artifacts.
    port = free_port()
    proc = start_local_server("127.0.0.1", port, "--artifacts", str(out), log_file=tmp_path / "server.log")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def exported_backbone() -> None:
    """The ONNX backbone in the cache, exported in a child process as the server does (torch warns as it exports)."""
    code = "from lib.local import Backbone; from lib.settings import load_settings; Backbone(load_settings().cache_dir)"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, timeout=600)


@pytest.mark.slow
def test_the_trainers_held_out_figures_are_the_harness_figures_through_the_server_photo_by_photo(
        tmp_path: Path, pets: Path, exported_backbone: None) -> None:
    out = tmp_path / "head"
    result = train_local(pets, out)
    metrics = json.loads((out / "metrics.json").read_text())
    held = held_out_split(pets)
    assert result.split_source == "hash" and result.n_test == 74 and result.n_train == 185
    assert metrics["test_ids"] == [p.id for p in held.test] and metrics["train_ids"] == [p.id for p in held.train]

    port = free_port()
    proc = start_local_server("127.0.0.1", port, "--artifacts", str(out), log_file=tmp_path / "server.log")
    results = tmp_path / "results"
    served = {}
    try:
        for model, tuned_from in (("pets-tuned", "pets-base"), ("pets-base", None)):
            backend = Backend(name=model, base_url=f"http://127.0.0.1:{port}/v1", model=model, family="local",
                              role="tuned" if tuned_from else "base", tuned_from=tuned_from)
            # The harness's defaults: the test split, free-text answers, the client's preparation of each photo.
            served[model] = run_evaluation(EvalOptions(backend, pets, str(results), concurrency=4))
    finally:
        proc.terminate()
        proc.wait(10)

    tuned, base = served["pets-tuned"], served["pets-base"]
    assert tuned.metrics.n == base.metrics.n == 74 and tuned.metrics.errors == base.metrics.errors == 0
    assert tuned.metrics.accuracy == result.test_accuracy == metrics["test_accuracy"]
    assert base.metrics.accuracy == result.base_test_accuracy == metrics["base_test_accuracy"]
    for model, run in served.items():
        figures = metrics["held_out"][model]
        assert (figures["accuracy"], figures["macro_f1"], figures["unknown_rate"]) == (
            run.metrics.accuracy, run.metrics.macro_f1, run.metrics.unknown_rate)
    answers = {a["photo_id"]: a for a in metrics["answers"]}
    for side, run in (("tuned", tuned), ("base", base)):
        records = {r.photo_id: r for r in read_records(Store(results), run.run_id).records}
        assert records.keys() == answers.keys()
        for photo_id, record in records.items():
            assert (record.raw, record.breed) == (answers[photo_id][f"{side}_raw"], answers[photo_id][f"{side}_breed"])
    assert result.test_accuracy > result.base_test_accuracy + 0.1  # and tuning helps
