"""The one config loader and the registry: defaults work on a fresh clone, mistakes say how to fix them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.errors import UserError
from lib.registry import find_backend, group_by_server, load_backends, read_models_toml
from lib.settings import ConfigError, load_settings


def test_defaults_need_no_environment() -> None:
    s = load_settings({})
    assert s.local_port == 8100 and s.app_mode == "presenter" and s.pets_dir is None


def test_environment_overrides_and_empty_means_unset() -> None:
    s = load_settings({"LOCAL_MODELS_PORT": "9001", "PETS_DIR": "", "APP_MODE": "attendee"})
    assert s.local_port == 9001 and s.pets_dir is None and s.app_mode == "attendee"


@pytest.mark.parametrize(("env", "needle"), [
    ({"LOCAL_MODELS_PORT": "eighty"}, "LOCAL_MODELS_PORT='eighty'"),
    ({"LOCAL_MODELS_PORT": "70000"}, "LOCAL_MODELS_PORT"),
    ({"APP_MODE": "admin"}, "APP_MODE='admin'"),
    ({"MAX_IMAGE_SIDE": "10"}, "MAX_IMAGE_SIDE"),
])
def test_bad_environment_names_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings(env)


def test_default_registry_lists_the_two_local_models_on_the_local_port() -> None:
    backends = read_models_toml(settings=load_settings({"LOCAL_MODELS_PORT": "8555"}))
    assert [b.name for b in backends] == ["pets-base", "pets-tuned"]
    assert all(b.base_url == "http://127.0.0.1:8555/v1" for b in backends)
    tuned = find_backend(backends, "pets-tuned")
    assert tuned.role == "tuned" and tuned.tuned_from == "pets-base"
    assert {b.group for b in backends} == {"efficientnet-lite0"}
    assert list(group_by_server(backends)) == ["local CPU server"]


ENTRY = '[[backend]]\nname="a"\nmodel="m"\n'
BAD_TOML = [
    ("not toml", "[[backend]\nname=", "not valid TOML"),
    ("unknown field", ENTRY + 'base_url="http://x/v1"\ncolour="red"\n', "backend 'a', colour"),
    ("remote without url", ENTRY + 'family="vllm"\n', "base_url is required"),
    ("bad url", ENTRY + 'base_url="ftp://x"\n', "http:// or https://"),
    ("bearer without env", ENTRY + 'base_url="http://x/v1"\nauth="bearer-env"\n', "token_env"),
    ("tuned without base", ENTRY + 'base_url="http://x/v1"\nrole="tuned"\n', "tuned_from"),
    ("duplicate", ENTRY + 'family="local"\n[[backend]]\nname="a"\nmodel="n"\nfamily="local"\n', "unique"),
]


@pytest.mark.parametrize(("case", "text", "needle"), BAD_TOML, ids=[c[0] for c in BAD_TOML])
def test_bad_models_toml_says_what_to_fix(tmp_path: Path, case: str, text: str, needle: str) -> None:
    path = tmp_path / "models.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        read_models_toml(path, settings=load_settings({}))


def test_missing_models_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        read_models_toml(tmp_path / "nope.toml", settings=load_settings({}))


def test_unknown_backend_lists_known_names() -> None:
    with pytest.raises(UserError, match="known: pets-base, pets-tuned"):
        find_backend(read_models_toml(settings=load_settings({})), "gemma")


def test_an_unknown_backend_suggests_the_closest_names() -> None:
    with pytest.raises(UserError, match="did you mean: pets-tuned"):
        find_backend(read_models_toml(settings=load_settings({})), "pets-tunned")


def test_without_a_project_the_registry_is_models_toml_and_discovery_is_off() -> None:
    registry = load_backends(load_settings({}))
    assert registry.names == ["pets-base", "pets-tuned"]
    assert (registry.discovery, registry.services, registry.problems) == ("off", (), ())
    labels = [b.label for b in registry.backends]
    assert labels == ["pets-base · base", "pets-tuned · tuned"]
    assert {b.server for b in registry.backends} == {"local CPU server"}
