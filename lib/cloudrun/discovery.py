"""Discovery: Cloud Run services across regions, probed at `/v1/models`; `lib.registry` merges what it finds.

Listing goes through the Admin API (`admin.list_services`, regions in parallel); probing sends one
GET per service with a Google ID token (audience = service URL), all at once with a bounded
concurrency and a per-probe timeout, so 150 services cost about one round trip. Results are
cached as JSON under the cache dir so pages do not rediscover on every rerun.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import httpx

from lib.client import GoogleIdTokens, TokenProvider, make_http_client
from lib.cloudrun.admin import Clients, ServiceInfo, list_services
from lib.errors import UserError
from lib.registry import Backend
from lib.settings import Settings, load_settings

__all__ = [
    "ServedModel",
    "DiscoveredService",
    "discover",
    "discover_cached",
    "probe_services",
    "to_backends",
    "discovery_regions",
]


@dataclass(frozen=True)
class ServedModel:
    """One entry of a server's `/v1/models`; vLLM sets `parent` on LoRA adapters to the base model id."""

    id: str
    root: str | None = None
    parent: str | None = None
    owned_by: str | None = None


@dataclass(frozen=True)
class DiscoveredService:
    """A Cloud Run service and what its `/v1/models` said (health: ok, timeout, forbidden, ...)."""

    info: ServiceInfo
    health: str
    models: tuple[ServedModel, ...] = ()
    probe_ms: float | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def base_url(self) -> str:
        return self.info.url.rstrip("/") + "/v1"


@dataclass
class _CachingTokens:
    """One ID token per audience for a discovery run; a credentials failure is remembered, not retried 150 times."""

    provider: TokenProvider
    tokens: dict[str, str] = field(default_factory=dict)
    failure: Exception | None = None

    async def __call__(self, audience: str) -> str:
        if self.failure is not None:
            raise self.failure
        if audience not in self.tokens:
            try:
                self.tokens[audience] = await self.provider(audience)
            except Exception as exc:
                from google.auth import exceptions as auth_exc

                if isinstance(exc, auth_exc.DefaultCredentialsError):
                    self.failure = exc
                raise
        return self.tokens[audience]


async def _probe_one(
    http: httpx.AsyncClient, info: ServiceInfo, tokens: _CachingTokens, timeout_s: float,
    gate: asyncio.Semaphore,
) -> DiscoveredService:
    if not info.url:
        return DiscoveredService(info, "no-url", error="the service has no URL yet (still deploying?)")
    audience = info.url.rstrip("/")
    async with gate:
        start = time.perf_counter()
        try:
            token = await tokens(audience)
            response = await http.get(f"{audience}/v1/models", headers={"Authorization": f"Bearer {token}"},
                                      timeout=timeout_s)
        except httpx.TimeoutException:
            return DiscoveredService(info, "timeout", error=f"/v1/models did not answer within {timeout_s:g} s")
        except httpx.TransportError as exc:
            return DiscoveredService(info, "unreachable", error=f"cannot connect: {exc or type(exc).__name__}")
        except Exception as exc:  # google-auth: missing or refused credentials
            name = type(exc).__name__
            hint = ("no Google credentials: run `gcloud auth application-default login` or set "
                    "GOOGLE_APPLICATION_CREDENTIALS") if name == "DefaultCredentialsError" else f"{name}: {exc}"
            return DiscoveredService(info, "no-credentials", error=hint)
        probe_ms = (time.perf_counter() - start) * 1000
    status = response.status_code
    if status in (401, 403):
        return DiscoveredService(info, "forbidden", probe_ms=probe_ms, error=(
            f"HTTP {status}: the caller needs roles/run.invoker on {info.name}"))
    if status == 404:
        return DiscoveredService(info, "no-models-endpoint", probe_ms=probe_ms, error=(
            "no /v1/models (404): not an OpenAI-compatible server, or it serves under another path"))
    if status != 200:
        return DiscoveredService(info, "error", probe_ms=probe_ms, error=f"/v1/models answered HTTP {status}")
    try:
        data = response.json()["data"]
        models = tuple(ServedModel(str(m["id"]), m.get("root"), m.get("parent"), m.get("owned_by")) for m in data)
    except (ValueError, KeyError, TypeError):
        return DiscoveredService(info, "error", probe_ms=probe_ms, error="/v1/models is not an OpenAI model list")
    return DiscoveredService(info, "ok", models, probe_ms)


async def probe_services(
    services: Sequence[ServiceInfo], *, timeout_s: float = 5.0, token_provider: TokenProvider | None = None,
    concurrency: int = 64, http: httpx.AsyncClient | None = None,
) -> list[DiscoveredService]:
    """Probe every service's `/v1/models` at once (bounded by `concurrency`); order kept, never raises."""
    google_tokens: GoogleIdTokens | None = None
    if token_provider is None:
        token_provider = google_tokens = GoogleIdTokens()
    tokens = _CachingTokens(token_provider)
    gate = asyncio.Semaphore(concurrency)
    own = http is None
    http = http or make_http_client(max_connections=concurrency, timeout_s=timeout_s)
    try:
        return list(await asyncio.gather(*(_probe_one(http, s, tokens, timeout_s, gate) for s in services)))
    finally:
        if own:
            await http.aclose()
        if google_tokens is not None:
            google_tokens.close()


def discover(
    project: str, regions: Sequence[str], *, label: str | None = None, probe: bool = True, timeout_s: float = 5.0,
    clients: Clients | None = None, token_provider: TokenProvider | None = None,
) -> list[DiscoveredService]:
    """List services in `regions` (optionally with `label`), then probe each one's `/v1/models`."""
    if not project:
        raise UserError("no Google Cloud project: pass --project or set GOOGLE_CLOUD_PROJECT")
    if not regions:
        raise UserError("no regions to search: pass --region (repeatable) or set CLOUD_RUN_REGIONS")
    services = list_services(project, regions, label=label, clients=clients)
    if not probe:
        return [DiscoveredService(s, "not-probed") for s in services]
    return asyncio.run(probe_services(services, timeout_s=timeout_s, token_provider=token_provider))


# --- cache -------------------------------------------------------------------------------------


def _cache_path(settings: Settings, project: str, regions: Sequence[str], label: str | None) -> Path:
    key = hashlib.sha256(json.dumps([project, sorted(regions), label]).encode()).hexdigest()[:16]
    return settings.cache_dir / "cloudrun" / f"discovery-{key}.json"


def _from_json(row: dict[str, Any]) -> DiscoveredService:
    return DiscoveredService(
        ServiceInfo(**row["info"]), row["health"], tuple(ServedModel(**m) for m in row["models"]),
        row["probe_ms"], row["error"],
    )


def discover_cached(
    project: str, regions: Sequence[str], *, label: str | None = None, max_age_s: float = 300.0,
    refresh: bool = False, settings: Settings | None = None, **kwargs: Any,
) -> list[DiscoveredService]:
    """`discover`, answered from the JSON cache when it is younger than `max_age_s` (and not `refresh`)."""
    settings = settings or load_settings()
    path = _cache_path(settings, project, regions, label)
    if not refresh and path.exists() and time.time() - path.stat().st_mtime < max_age_s:
        try:
            return [_from_json(row) for row in json.loads(path.read_text())["services"]]
        except (ValueError, KeyError, TypeError):
            pass  # a stale or foreign cache file: rediscover
    found = discover(project, regions, label=label, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"project": project, "regions": list(regions), "label": label,
                               "services": [asdict(s) for s in found]}))
    tmp.replace(path)
    return found


# --- into the registry -------------------------------------------------------------------------


def _backend_name(service: str, model: str) -> str:
    return f"{service}/{model}"


def to_backends(services: Iterable[DiscoveredService]) -> list[Backend]:
    """One `Backend` per model a healthy service serves: the base model and each LoRA adapter."""
    return [_served_backend(svc, model) for svc in services if svc.health == "ok" for model in svc.models]


def _served_backend(svc: DiscoveredService, model: ServedModel) -> Backend:
    gpu = f"{svc.info.gpu_type} x{svc.info.gpu_count}" if svc.info.gpu_type else "no GPU"
    return Backend(
        name=_backend_name(svc.name, model.id),
        base_url=svc.base_url,
        model=model.id,
        family="vllm" if (model.owned_by or "") == "vllm" else "openai",
        role="tuned" if model.parent else "base",
        tuned_from=_backend_name(svc.name, model.parent) if model.parent else None,
        base_model=model.parent or model.id,
        auth="google-id-token",
        region=svc.info.region,
        service=svc.name,
        source="cloud-run",
        notes=f"Cloud Run {svc.name} ({gpu}); root {model.root or model.id}",
    )


def discovery_regions(settings: Settings) -> list[str]:
    """`CLOUD_RUN_REGIONS` (comma-separated), else the one `CLOUD_RUN_REGION`."""
    regions = [r.strip() for r in settings.cloud_run_regions.split(",") if r.strip()]
    return regions or [settings.region]
