"""The report a fresh clone shows is real: the harness, asked again today against the real local server,
gives the shipped runs' answers photo by photo, and the tuned figure is the one Tuning shows.

If this fails after the head or the harness changed, remake the runs: `make first-run`.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from lib.accuracy import EvalOptions, catalog, read_records, run_evaluation, summarize
from lib.data import select_photos
from lib.registry import read_models_toml
from lib.settings import REPO_ROOT, load_settings
from lib.store import Store

pytestmark = pytest.mark.slow

SHIPPED = REPO_ROOT / "artifacts" / "first-run"


def shipped_pair() -> dict[str, str]:
    listing = catalog(str(SHIPPED / "no-results-here"), SHIPPED)
    base, tuned = listing.default_pair()
    assert base and tuned and listing.shipped == {base, tuned}
    return {"pets-base": base, "pets-tuned": tuned}


def test_the_shipped_runs_are_what_the_harness_answers_today(local_server: str, pets: Path, tmp_path: Path) -> None:
    settings = load_settings({"LOCAL_MODELS_PORT": str(urlparse(local_server).port)})
    held_out = {p.id for p in select_photos(pets, "test").photos}
    for backend in read_models_toml(settings=settings):
        shipped = read_records(Store(SHIPPED), shipped_pair()[backend.name])
        assert (shipped.info.backend, shipped.info.split, shipped.info.constrained) == (backend.name, "test", False)
        assert {r.photo_id for r in shipped.records} == held_out and not shipped.torn
        today = run_evaluation(EvalOptions(backend, pets, str(tmp_path / "results"), concurrency=4))
        again = {r.photo_id: r for r in read_records(Store(tmp_path / "results"), today.run_id).records}
        assert [(r.photo_id, r.raw, r.breed) for r in shipped.records] == [
            (r.photo_id, again[r.photo_id].raw, again[r.photo_id].breed) for r in shipped.records]


def test_tuning_and_accuracy_show_the_same_figure_for_the_shipped_head() -> None:
    trainer = json.loads((REPO_ROOT / "artifacts" / "pets-tuned" / "metrics.json").read_text())
    runs = shipped_pair()
    tuned = summarize(read_records(Store(SHIPPED), runs["pets-tuned"]).records)
    base = summarize(read_records(Store(SHIPPED), runs["pets-base"]).records)
    assert (tuned.n, tuned.accuracy) == (trainer["n_test"], trainer["test_accuracy"])
    assert base.accuracy == trainer["base_test_accuracy"]
