"""Without photos, or with a half-finished `make data`, every command and page says so plainly and how to fix it,
and the rest keeps working; with the dataset's layout, they find the photos in `images/`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.cli import main
from lib.data import GET_PHOTOS
from lib.loadgen import prepare_payloads
from testkit import REPO, free_port
from testkit.evalkit import make_photos

HALF = "the dataset is only partly downloaded"


@pytest.fixture()
def half(tmp_path: Path) -> Path:
    """`make data` cut off during the first archive: a `.part` file and nothing else."""
    folder = tmp_path / "pets"
    folder.mkdir()
    (folder / "images.tar.gz.part").write_bytes(b"\x1f\x8b" + b"x" * 4096)
    return folder


@pytest.mark.parametrize("argv", [
    ["eval", "--url", "http://127.0.0.1:9/v1", "--model", "m", "--quiet"],
    ["loadgen", "--url", "http://127.0.0.1:9/v1", "--model", "m", "--rate", "1", "--duration", "1", "--out", "r.jsonl"],
    ["coldstart", "http://127.0.0.1:9/v1", "--model", "m", "--no-save"],
], ids=["eval", "loadgen", "coldstart"])
def test_commands_name_a_half_download_in_one_line(argv: list[str], half: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PETS_DIR", str(half))  # the default photo folder of every command
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path / "results"))
    monkeypatch.chdir(tmp_path)  # a relative --out stays out of the checkout
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert f"{half}: {HALF} (images.tar.gz.part: " in err and "run `make data` again to resume" in err


def test_commands_without_photos_say_how_to_get_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("PETS_DIR", str(tmp_path / "no-photos-here"))
    monkeypatch.setenv("RESULTS_ROOT", str(tmp_path / "results"))
    assert main(["coldstart", "http://127.0.0.1:9/v1", "--model", "m", "--no-save"]) == 2
    err = capsys.readouterr().err
    assert "no photo to send" in err and GET_PHOTOS in err and "--image PATH" in err


def test_the_load_generator_sends_the_photos_of_a_downloaded_dataset(tmp_path: Path) -> None:
    make_photos(tmp_path / "pets" / "images", per_breed=2)
    payloads = prepare_payloads(tmp_path / "pets", "pets-tuned", max_side=64)
    assert sorted(p.name for p in payloads) == sorted(p.name for p in (tmp_path / "pets" / "images").iterdir())
    assert json.loads(payloads[0].body)["model"] == "pets-tuned"


@pytest.fixture()
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    def make(pets_dir: Path, page: str = "streamlit_app.py") -> AppTest:
        monkeypatch.setenv("PETS_DIR", str(pets_dir))
        monkeypatch.setenv("LOCAL_MODELS_PORT", str(free_port()))  # no server: the photo messages come first
        monkeypatch.setenv("RESULTS_ROOT", str(tmp_path / "results"))
        monkeypatch.setenv("PETS_CACHE_DIR", str(tmp_path / "cache"))
        st.cache_data.clear()
        st.cache_resource.clear()
        return AppTest.from_file(str(REPO / page), default_timeout=60)

    return make


@pytest.mark.slow
def test_classify_names_a_half_download_and_still_takes_uploads(app, half: Path) -> None:
    at = app(half).run()
    at.radio(key="source").set_value("Sample photos").run()
    assert not at.exception
    shown = [i.value for i in at.info if i.value.startswith("No sample photos")]
    assert len(shown) == 1 and HALF in shown[0] and "run `make data` again to resume" in shown[0]
    at.radio(key="source").set_value("Upload").run()
    assert not at.exception and at.get("file_uploader")


@pytest.mark.slow
def test_classify_without_photos_says_how_to_get_them(app, tmp_path: Path) -> None:
    at = app(tmp_path / "nowhere").run()
    at.radio(key="source").set_value("Sample photos").run()
    assert any(i.value.startswith("No sample photos") and GET_PHOTOS in i.value for i in at.info)


@pytest.mark.slow
def test_classify_shows_the_photos_of_a_downloaded_dataset(app, tmp_path: Path) -> None:
    make_photos(tmp_path / "pets" / "images", per_breed=2)
    at = app(tmp_path / "pets").run()
    at.radio(key="source").set_value("Sample photos").run()
    assert not at.exception and not [i for i in at.info if i.value.startswith("No sample photos")]
    assert at.selectbox(key="sample-breed").options  # the breeds of the photos in images/


@pytest.mark.slow
def test_live_names_a_half_download_when_asked_to_send_photos(app, half: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    registry = tmp_path / "models.toml"
    registry.write_text('[[backend]]\nname = "m"\nbase_url = "http://127.0.0.1:9/v1"\nmodel = "m"\n'
                        'family = "openai"\n')
    monkeypatch.setenv("MODELS_TOML", str(registry))
    at = app(half, "app_pages/live.py").run()
    at.selectbox[0].set_value("m")
    at.toggle[0].set_value(True)
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and HALF in errors[0] and "run `make data` again to resume" in errors[0]
