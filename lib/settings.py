"""The one configuration loader: environment variables, read in one place, validated by pydantic."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from lib.errors import UserError

__all__ = ["REPO_ROOT", "Settings", "ConfigError", "load_settings"]

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(UserError):
    """A configuration value is missing or wrong; the message says how to fix it."""


class Settings(BaseModel):
    """Process-wide settings; every field maps to one environment variable (see `ENV`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models_toml: Path = REPO_ROOT / "models.toml"
    pets_dir: Path | None = None
    results_root: str = str(REPO_ROOT / "results")
    artifacts_dir: Path = REPO_ROOT / "artifacts" / "pets-tuned"
    shipped_results: Path = REPO_ROOT / "artifacts" / "first-run"  # the runs a fresh clone's report shows
    cache_dir: Path = REPO_ROOT / ".cache"
    local_host: str = "127.0.0.1"
    local_port: int = Field(default=8100, ge=1, le=65535)
    max_image_side: int = Field(default=896, ge=64, le=4096)
    upload_max_mb: int = Field(default=20, ge=1, le=200)
    google_cloud_project: str | None = None
    region: str = "europe-west4"
    app_mode: Literal["presenter", "attendee"] = "presenter"
    cloud_run_api_endpoint: str | None = None  # host:port of a local fake Admin API (tests); None = Google
    cloud_run_regions: str = ""  # comma-separated regions for discovery; empty = `region` only
    monitoring_api_endpoint: str | None = None  # host:port of a local fake Cloud Monitoring API (tests)
    task_index: int = Field(default=0, ge=0)  # set by Cloud Run Jobs for each task
    task_count: int = Field(default=1, ge=1)
    task_attempt: int = Field(default=0, ge=0)  # Cloud Run Jobs: 0 first try, >0 a retry
    # Dashboard access (lib/access.py) and abuse limits (lib/ratelimit.py).
    trust_iap: bool = False  # only behind IAP: otherwise anyone can send the IAP header
    presenter_emails: str = ""  # comma-separated addresses IAP may vouch for as presenters
    presenter_token: SecretStr | None = None  # on Cloud Run: --set-secrets PRESENTER_TOKEN=presenter-token:latest
    forwarded_for_hops: int = Field(default=1, ge=1, le=10)  # proxies that append to X-Forwarded-For
    rate_session_per_min: float = Field(default=12.0, gt=0)  # classifications per browser session
    rate_session_burst: int = Field(default=6, ge=1)
    rate_client_per_min: float = Field(default=120.0, gt=0)  # per client address (a room may share one NAT)
    rate_client_burst: int = Field(default=60, ge=1)
    sign_in_attempts: int = Field(default=5, ge=1)  # wrong presenter tokens per client per window
    sign_in_window_s: int = Field(default=600, ge=1)


# Environment variable -> Settings field.
ENV: dict[str, str] = {
    "MODELS_TOML": "models_toml",
    "PETS_DIR": "pets_dir",
    "RESULTS_ROOT": "results_root",
    "PETS_ARTIFACTS": "artifacts_dir",
    "SHIPPED_RESULTS": "shipped_results",
    "PETS_CACHE_DIR": "cache_dir",
    "LOCAL_MODELS_HOST": "local_host",
    "LOCAL_MODELS_PORT": "local_port",
    "MAX_IMAGE_SIDE": "max_image_side",
    "UPLOAD_MAX_MB": "upload_max_mb",
    "GOOGLE_CLOUD_PROJECT": "google_cloud_project",
    "CLOUD_RUN_REGION": "region",
    "APP_MODE": "app_mode",
    "CLOUD_RUN_API_ENDPOINT": "cloud_run_api_endpoint",
    "CLOUD_RUN_REGIONS": "cloud_run_regions",
    "MONITORING_API_ENDPOINT": "monitoring_api_endpoint",
    "CLOUD_RUN_TASK_INDEX": "task_index",
    "CLOUD_RUN_TASK_COUNT": "task_count",
    "CLOUD_RUN_TASK_ATTEMPT": "task_attempt",
    "TRUST_IAP": "trust_iap",
    "PRESENTER_EMAILS": "presenter_emails",
    "PRESENTER_TOKEN": "presenter_token",
    "FORWARDED_FOR_HOPS": "forwarded_for_hops",
    "RATE_SESSION_PER_MIN": "rate_session_per_min",
    "RATE_SESSION_BURST": "rate_session_burst",
    "RATE_CLIENT_PER_MIN": "rate_client_per_min",
    "RATE_CLIENT_BURST": "rate_client_burst",
    "SIGN_IN_ATTEMPTS": "sign_in_attempts",
    "SIGN_IN_WINDOW_S": "sign_in_window_s",
}
SECRET_FIELDS = frozenset({"presenter_token"})  # never echoed in error messages


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build `Settings` from the environment; a bad value raises `ConfigError` naming the variable."""
    environ = os.environ if environ is None else environ
    values = {field: environ[var] for var, field in ENV.items() if environ.get(var, "") != ""}
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        field_to_var = {field: var for var, field in ENV.items()}
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            shown = "(hidden)" if field in SECRET_FIELDS else repr(values.get(field))
            problems.append(f"{field_to_var.get(field, field)}={shown}: {err['msg']}")
        raise ConfigError("Bad environment setting: " + "; ".join(problems)) from None
