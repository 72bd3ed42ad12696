"""`python -m lib deploy dashboard`: the Streamlit dashboard as a public Cloud Run service.

Streamlit keeps one WebSocket per browser session and uploads files over separate HTTP requests
that must reach the instance holding that session, hence session affinity; a WebSocket is one
long request, so the request timeout is Cloud Run's maximum (3600 s; the browser reconnects after
it). One warm instance avoids a cold start on stage. Attendees are the default (APP_MODE=attendee);
the presenter token comes from Secret Manager, never from a flag or the command line.
"""

from __future__ import annotations

import shutil
import subprocess

from lib.cloudrun.gcloud import render_deploy
from lib.cloudrun.specs import ProbeSpec, ServiceSpec, SpecError, build_spec
from lib.errors import UserError
from lib.settings import load_settings

__all__ = ["dashboard_spec", "render_dashboard_deploy", "run_gcloud"]

WEBSOCKET_TIMEOUT_S = 3600  # Cloud Run's maximum request timeout; a WebSocket lives at most this long
HEALTH_PATH = "/_stcore/health"  # Streamlit's own health endpoint (the Dockerfile's HEALTHCHECK too)


def dashboard_spec(
    image: str, *, name: str = "pets-dashboard", project: str | None = None, region: str | None = None,
    min_instances: int = 1, max_instances: int = 4, concurrency: int = 80, cpu: float = 1,
    memory: str = "1Gi",
    presenter_secret: str | None = "presenter-token:latest", presenter_emails: list[str] | None = None,
    trust_iap: bool = False, results_root: str | None = None, env: dict[str, str] | None = None,
    service_account: str | None = None,
) -> ServiceSpec:
    """The dashboard's service spec: no GPU, public, attendee mode, presenter token from Secret Manager."""
    settings = load_settings()
    values = {"APP_MODE": "attendee", "TRUST_IAP": "true" if trust_iap else "false"}
    if presenter_emails:
        values["PRESENTER_EMAILS"] = ",".join(e.strip().lower() for e in presenter_emails)
    if trust_iap and not presenter_emails:
        raise SpecError("--trust-iap needs at least one --presenter-email (the addresses IAP may vouch for)")
    project = project or settings.google_cloud_project
    if project:
        values["GOOGLE_CLOUD_PROJECT"] = project  # Cloud Run discovery of the model services
    if results_root:
        values["RESULTS_ROOT"] = results_root  # the accuracy report, e.g. gs://bucket/results
    for key in (env or {}):
        if key in ("PRESENTER_TOKEN", "APP_MODE"):
            raise SpecError(f"{key} cannot be set with --env: "
                            + ("it comes from Secret Manager (--presenter-secret)" if key == "PRESENTER_TOKEN"
                               else "the public dashboard is always in attendee mode"))
    values.update(env or {})
    secrets = {"PRESENTER_TOKEN": presenter_secret} if presenter_secret else {}
    return build_spec(
        ServiceSpec, name=name, image=image, project=project, region=region or settings.region,
        cpu=cpu, memory=memory, min_instances=min_instances, max_instances=max_instances,
        concurrency=concurrency, timeout_s=WEBSOCKET_TIMEOUT_S, port=8080, env=values, secrets=secrets,
        service_account=service_account, allow_unauthenticated=True, model_load_s=30,
        startup_probe=ProbeSpec(path=HEALTH_PATH, period_s=5, timeout_s=3, failure_threshold=12),
        labels={"app": "pets-dashboard"},
    )


def render_dashboard_deploy(spec: ServiceSpec, *, trust_iap: bool = False) -> list[str]:
    """`gcloud run deploy` for the dashboard: service flags, session affinity (and ingress for IAP)."""
    argv = render_deploy(spec)
    extra = ["--session-affinity"]
    if trust_iap:
        # The IAP header is trusted only if nothing but the load balancer (where IAP runs) can reach us.
        extra.append("--ingress=internal-and-cloud-load-balancing")
    return argv[:-1] + extra + argv[-1:]


def run_gcloud(argv: list[str]) -> int:
    """Run a rendered gcloud command where gcloud is installed; its exit code."""
    if shutil.which("gcloud") is None:
        raise UserError("gcloud is not installed: install the Google Cloud CLI, or use --dry-run and run the "
                        "printed command where gcloud is")
    return subprocess.run(argv, check=False).returncode
