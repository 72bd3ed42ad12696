"""The local trainer: trains a real head that the real server loads; bad input is a clear error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lib.breeds import BREED_IDS
from lib.errors import UserError
from lib.finetune.local import fit_head, train_local
from lib.local import Features, TunedHead

from testkit import REPO


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
    from lib.local import start_local_server
    from testkit import free_port
    import httpx
    port = free_port()
    proc = start_local_server("127.0.0.1", port, "--artifacts", str(out), log_file=tmp_path / "server.log")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(10)
