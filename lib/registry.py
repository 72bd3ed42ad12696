"""The one registry: every backend a page or a command may call, from `models.toml` plus Cloud Run discovery.

A backend is one model name behind one OpenAI-compatible base URL, so a vLLM service serving many
LoRA adapters is many backends with the same URL. `load_backends` is the one entry point: pages wrap it
in one cached function, the CLI calls it through `resolve_backend`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lib.errors import UserError
from lib.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from lib.cloudrun import DiscoveredService

__all__ = [
    "Auth", "Family", "Backend", "Registry", "load_backends", "resolve_backend", "read_models_toml", "find_backend",
    "local_base_url", "merge_backends", "filter_backends", "group_by_server",
]

Family = Literal["local", "vllm", "ollama", "openai"]
Auth = Literal["none", "google-id-token", "bearer-env"]
LOCAL_SERVER = "local CPU server"


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
    service: str | None = None  # the Cloud Run service it was discovered on
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

    @property
    def server(self) -> str:
        """Where it is served: its Cloud Run service, the local CPU server, or the URL's host."""
        if self.service:
            return self.service
        if self.family == "local":
            return LOCAL_SERVER
        return urlparse(self.base_url).hostname or self.base_url

    @property
    def kind(self) -> str:
        """base, tuned (a local head or a models.toml entry), or adapter (a LoRA adapter on a Cloud Run service)."""
        if self.role == "base":
            return "base"
        return "adapter" if self.source == "cloud-run" else "tuned"

    @property
    def label(self) -> str:
        """How pickers show it: the name and what it is (`svc/pets-lora-7 · adapter`), short enough for a tag."""
        return f"{self.name} · {self.kind}"


@dataclass(frozen=True)
class Registry:
    """Every backend that may be called, the Cloud Run services discovery found, and what went wrong there.

    `problems` are one-line messages (a service that answered 403 or timed out, a name taken twice,
    discovery itself failing); the backends that work are listed all the same.
    """

    backends: tuple[Backend, ...]
    services: tuple["DiscoveredService", ...] = ()
    problems: tuple[str, ...] = ()
    discovery: Literal["off", "ok", "failed"] = "off"

    def find(self, name: str) -> Backend:
        """The backend called `name`; a ConfigError lists similar names."""
        return find_backend(self.backends, name)

    @property
    def names(self) -> list[str]:
        return [b.name for b in self.backends]


class _RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backend: list[Backend] = Field(default_factory=list)


def local_base_url(settings: Settings) -> str:
    """Where the embedded local model server listens."""
    return f"http://{settings.local_host}:{settings.local_port}/v1"


def read_models_toml(path: Path | None = None, settings: Settings | None = None) -> list[Backend]:
    """Read and validate `models.toml` alone; errors name the file, the backend and the field."""
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
            where = "file"
            if len(loc) > 1 and loc[0] == "backend" and isinstance(loc[1], int):
                i = loc[1]
                where = f"backend #{i + 1}"
                entries = raw.get("backend", [])
                if isinstance(entries, list) and i < len(entries) and isinstance(entries[i], dict):
                    where = f"backend {entries[i].get('name', f'#{i + 1}')!r}"
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


def merge_backends(configured: Iterable[Backend], discovered: Iterable[Backend]) -> tuple[list[Backend], list[str]]:
    """models.toml first, then discovered backends; (merged, problems).

    The same endpoint (URL and model) found again is the same backend and is dropped quietly; a
    discovered backend whose name models.toml already uses for another endpoint is dropped with a
    problem saying so, since one name must mean one model everywhere (pickers, `--backend`, results).
    """
    merged = list(configured)
    by_name = {b.name: b for b in merged}
    endpoints = {(b.base_url.rstrip("/"), b.model) for b in merged}
    problems = []
    for backend in discovered:
        key = (backend.base_url.rstrip("/"), backend.model)
        if key in endpoints:
            continue
        if backend.name in by_name:
            problems.append(
                f"{backend.name}: the name is taken by models.toml ({by_name[backend.name].base_url}), so model "
                f"{backend.model} on Cloud Run service {backend.service or backend.base_url} is left out; rename "
                "the models.toml entry to use both")
            continue
        merged.append(backend)
        by_name[backend.name] = backend
        endpoints.add(key)
    return merged, problems


def load_backends(
    settings: Settings | None = None, *, refresh: bool = False, max_age_s: float = 300.0, probe_timeout_s: float = 5.0,
) -> Registry:
    """models.toml plus what Cloud Run discovery finds (when GOOGLE_CLOUD_PROJECT is set).

    A bad models.toml raises ConfigError; a discovery failure or an unusable service becomes a problem
    line, and everything that does work is still returned.
    """
    settings = settings or load_settings()
    configured = read_models_toml(settings=settings)
    if not settings.google_cloud_project:
        return Registry(tuple(configured))
    # The Cloud Run client libraries load only when a project is set.
    from lib.cloudrun import discover_cached, discovery_regions, to_backends

    try:
        found = discover_cached(settings.google_cloud_project, discovery_regions(settings),
                                max_age_s=max_age_s, refresh=refresh, settings=settings, timeout_s=probe_timeout_s)
    except UserError as exc:
        return Registry(tuple(configured), problems=(f"Cloud Run discovery failed: {exc}",), discovery="failed")
    merged, clashes = merge_backends(configured, to_backends(found))
    unusable = [f"{s.name} ({s.info.region}): {s.health}: {s.error}" for s in found if s.health != "ok"]
    return Registry(tuple(merged), tuple(found), tuple(unusable + clashes), "ok")


def resolve_backend(name: str, settings: Settings | None = None) -> Backend:
    """The backend a command's `--backend NAME` means: models.toml first, then Cloud Run discovery."""
    settings = settings or load_settings()
    configured = read_models_toml(settings=settings)
    if any(b.name == name for b in configured) or not settings.google_cloud_project:
        return find_backend(configured, name)
    registry = load_backends(settings)
    try:
        return registry.find(name)
    except ConfigError as exc:
        hints = "; ".join(registry.problems[:3])
        raise ConfigError(f"{exc}" + (f" (discovery: {hints})" if hints else "")) from None


def find_backend(backends: Iterable[Backend], name: str) -> Backend:
    """The backend called `name`, or a `ConfigError` listing the known names (closest first)."""
    backends = list(backends)
    for backend in backends:
        if backend.name == name:
            return backend
    import difflib

    names = [b.name for b in backends]
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    shown = close or names[:10]
    more = f" (and {len(names) - len(shown)} more)" if len(names) > len(shown) else ""
    raise ConfigError(f"unknown backend {name!r}; {'did you mean' if close else 'known'}: "
                      f"{', '.join(shown) or 'none'}{more}")


def filter_backends(backends: Iterable[Backend], query: str) -> list[Backend]:
    """Backends whose name, model, base model, server, region or notes contain every word of `query`."""
    words = query.lower().split()
    if not words:
        return list(backends)
    result = []
    for b in backends:
        text = " ".join([b.name, b.model, b.group, b.server, b.region or "", b.notes]).lower()
        if all(w in text for w in words):
            result.append(b)
    return result


def group_by_server(backends: Iterable[Backend]) -> dict[str, list[Backend]]:
    """Backends grouped by where they are served, the local server first; base models before adapters."""
    groups: dict[str, list[Backend]] = {}
    for backend in backends:
        groups.setdefault(backend.server, []).append(backend)
    order = sorted(groups, key=lambda g: (g != LOCAL_SERVER, g))
    return {g: sorted(groups[g], key=lambda b: (b.role != "base", b.name)) for g in order}
