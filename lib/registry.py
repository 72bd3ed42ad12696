"""Which backends exist: `models.toml`, validated with pydantic, one `Backend` record per model.

A backend is one model name behind one OpenAI-compatible base URL, so a vLLM service serving
many LoRA adapters is many backends with the same URL.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lib.settings import ConfigError, Settings, load_settings

__all__ = ["Backend", "load_registry", "find_backend", "local_base_url", "group_by_base_model"]

Family = Literal["local", "vllm", "ollama", "openai"]
Auth = Literal["none", "google-id-token", "bearer-env"]


class Backend(BaseModel):
    """One model behind one OpenAI-compatible endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    base_url: str = ""  # ends in /v1; empty for family "local" means the embedded local server
    model: str = Field(min_length=1)
    family: Family = "openai"
    role: Literal["base", "tuned"] = "base"
    tuned_from: str | None = None
    base_model: str | None = None  # for grouping hundreds of adapters in pickers
    auth: Auth = "none"
    token_env: str | None = None
    supports_json_schema: bool = True
    region: str | None = None
    source: Literal["models.toml", "cloud-run"] = "models.toml"
    notes: str = ""

    @model_validator(mode="after")
    def _check(self) -> "Backend":
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.base_url and self.family != "local":
            raise ValueError("base_url is required unless family = \"local\"")
        if self.auth == "bearer-env" and not self.token_env:
            raise ValueError('auth = "bearer-env" needs token_env = "NAME_OF_ENV_VAR"')
        if self.role == "tuned" and not self.tuned_from:
            raise ValueError('role = "tuned" needs tuned_from = "<name of the base backend>"')
        return self

    @property
    def group(self) -> str:
        """The base model this backend belongs to, for grouping in pickers."""
        return self.base_model or self.tuned_from or self.name


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: list[Backend] = Field(default_factory=list)


def local_base_url(settings: Settings) -> str:
    """Where the embedded local model server listens."""
    return f"http://{settings.local_host}:{settings.local_port}/v1"


def load_registry(path: Path | None = None, settings: Settings | None = None) -> list[Backend]:
    """Read and validate `models.toml`; errors name the file, the backend and the field."""
    settings = settings or load_settings()
    path = Path(path or settings.models_toml)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; set MODELS_TOML or create it (see README)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        parsed = _RegistryFile(**raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"]
            where = f"backend #{loc[1] + 1}" if len(loc) > 1 and loc[0] == "backend" else "file"
            if len(loc) > 1 and loc[0] == "backend":
                entries = raw.get("backend", [])
                if isinstance(entries, list) and loc[1] < len(entries) and isinstance(entries[loc[1]], dict):
                    where = f"backend {entries[loc[1]].get('name', '#' + str(loc[1] + 1))!r}"
            field = ".".join(str(p) for p in loc[2:]) or "entry"
            problems.append(f"{where}, {field}: {err['msg']}")
        raise ConfigError(f"{path}: " + "; ".join(problems)) from None
    backends = [
        b.model_copy(update={"base_url": local_base_url(settings)}) if not b.base_url else b
        for b in parsed.backend
    ]
    names = [b.name for b in backends]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: backend names must be unique, repeated: {', '.join(dupes)}")
    return backends


def find_backend(backends: Iterable[Backend], name: str) -> Backend:
    """The backend called `name`, or a `ConfigError` listing the known names."""
    backends = list(backends)
    for backend in backends:
        if backend.name == name:
            return backend
    known = ", ".join(b.name for b in backends[:20]) or "none"
    raise ConfigError(f"unknown backend {name!r}; known: {known}")


def group_by_base_model(backends: Iterable[Backend]) -> dict[str, list[Backend]]:
    """Backends grouped by base model, groups and members sorted by name."""
    groups: dict[str, list[Backend]] = {}
    for backend in backends:
        groups.setdefault(backend.group, []).append(backend)
    return {g: sorted(m, key=lambda b: b.name) for g, m in sorted(groups.items())}
