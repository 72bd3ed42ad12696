"""The dashboard image as the Dockerfile describes it, started with its own command; its deploy command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import dockerimage
import httpx
import pytest
from dockerimage import REPO
from support import free_port

INSTRUCTIONS = dockerimage.parse()


def test_a_small_image_running_as_a_non_root_user_in_attendee_mode() -> None:
    names = [i.name for i in INSTRUCTIONS]
    assert dockerimage.values(INSTRUCTIONS, "FROM") == ["python:3.11-slim"]
    users = dockerimage.values(INSTRUCTIONS, "USER")
    assert users and users[-1] not in ("root", "0") and names.index("USER") > max(
        i for i, n in enumerate(names) if n == "RUN")  # nothing runs as root after the switch... nor the app
    env = dockerimage.env(INSTRUCTIONS)
    assert env["APP_MODE"] == "attendee" and env["PORT"] == "8080"
    assert not [i for i in INSTRUCTIONS if "PRESENTER_TOKEN" in i.value]  # only from Secret Manager, at run time
    assert dockerimage.values(INSTRUCTIONS, "EXPOSE") == [env["PORT"]]
    # the page's own limit and Streamlit's server-side limit (HTTP 413) agree
    assert env["UPLOAD_MAX_MB"] == env["STREAMLIT_SERVER_MAX_UPLOAD_SIZE"]


def test_only_pinned_runtime_requirements_are_installed_and_no_torch() -> None:
    runs = " ".join(dockerimage.values(INSTRUCTIONS, "RUN"))
    assert re.findall(r"-r\s+(\S+)", runs) == ["requirements.txt"]
    lines = [ln.split("#")[0].strip() for ln in (REPO / "requirements.txt").read_text().splitlines()]
    packages = [ln for ln in lines if ln]
    assert packages and all(re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[0-9][A-Za-z0-9.+-]*", p) for p in packages), packages
    assert not any(p.lower().startswith(("torch==", "transformers==", "peft==")) for p in packages)


def test_the_start_command_is_streamlit_on_port_for_cloud_run() -> None:
    argv = dockerimage.cmd(INSTRUCTIONS)
    assert argv[:2] == ["sh", "-c"] and argv[2].startswith("exec streamlit run streamlit_app.py ")
    command = argv[2]
    for flag in ("--server.port=${PORT}", "--server.address=0.0.0.0", "--server.headless=true",
                 "--server.enableXsrfProtection=true", "--server.enableCORS=true"):
        assert flag in command
    assert "/_stcore/health" in dockerimage.values(INSTRUCTIONS, "HEALTHCHECK")[0]


def test_the_image_holds_what_the_app_needs_and_nothing_secret(tmp_path: Path) -> None:
    app = dockerimage.build_tree(tmp_path / "app", INSTRUCTIONS)
    shipped_runs = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "artifacts" / "first-run").rglob("*.json*"))
    for needed in ("streamlit_app.py", "models.toml", ".streamlit/config.toml", "lib/settings.py", "lib/data/split.py",
                   "app_pages/_common.py", "app_pages/classify.py", *shipped_runs):
        assert (app / needed).is_file(), needed
    present = {p.relative_to(app).as_posix() for p in app.rglob("*")}
    assert not [p for p in present if "__pycache__" in p or p.startswith(("tests", ".venv", "results"))]
    assert ".streamlit/secrets.toml" not in present
    ignored = dockerimage.dockerignore()
    for path in (".venv", "tests", ".cache", "results", "data", "test-output", ".streamlit/secrets.toml"):
        assert dockerimage.ignored(path, ignored), path
    kept = ("lib/settings.py", "lib/data/split.py", "app_pages/classify.py", "artifacts/pets-tuned/head.npz",
            "artifacts/first-run", "serving/vllm/entrypoint.sh")
    for path in kept:
        assert not dockerimage.ignored(path, ignored), path  # the serving images build from this context too


@pytest.mark.slow
def test_the_start_command_serves_the_app_and_its_health_check_passes(tmp_path: Path) -> None:
    port = free_port()
    container = dockerimage.start(tmp_path, port)
    try:
        health = httpx.get(f"{container.url}/_stcore/health", timeout=5)
        assert (health.status_code, health.text) == (200, "ok")
        assert "_streamlit_xsrf=" in health.headers.get("set-cookie", "")  # XSRF protection is on
        page = httpx.get(container.url, timeout=5)
        assert page.status_code == 200 and '<div id="root">' in page.text
        environ = dockerimage.container_env(INSTRUCTIONS, port, tmp_path / "home")
        check = subprocess.run(dockerimage.healthcheck(INSTRUCTIONS), env=environ, capture_output=True, timeout=10)
        assert check.returncode == 0, check.stderr
    finally:
        container.stop()
    log = container.log.read_text()
    assert "Traceback" not in log


def deploy(*args: str, path: str = "/usr/bin:/bin") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lib", "deploy", "dashboard", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": path, "GOOGLE_CLOUD_PROJECT": "demo-project"})


IMAGE = "europe-west4-docker.pkg.dev/demo-project/serving/dashboard:1"


def test_deploy_dashboard_dry_run_prints_the_gcloud_command() -> None:
    out = deploy("--image", IMAGE, "--results-root", "gs://demo-results/results", "--dry-run")
    assert out.returncode == 0, out.stderr
    argv = json.loads(out.stdout.strip().splitlines()[-1])["command"]
    assert argv[:4] == ["gcloud", "run", "deploy", "pets-dashboard"]
    for flag in (f"--image={IMAGE}", "--project=demo-project", "--region=europe-west4", "--session-affinity",
                 "--timeout=3600", "--min-instances=1", "--port=8080", "--allow-unauthenticated",
                 "--set-secrets=PRESENTER_TOKEN=presenter-token:latest",
                 "--set-env-vars=APP_MODE=attendee,TRUST_IAP=false,GOOGLE_CLOUD_PROJECT=demo-project,"
                 "RESULTS_ROOT=gs://demo-results/results"):
        assert flag in argv, flag
    assert not any(a.startswith("--gpu") for a in argv)
    assert any(a.startswith("--startup-probe=httpGet.path=/_stcore/health,httpGet.port=8080") for a in argv)
    assert "gcloud run deploy pets-dashboard \\\n  --image=" in out.stdout  # the printed, copyable command


def test_trusting_iap_closes_the_public_door() -> None:
    out = deploy("--image", IMAGE, "--trust-iap", "--presenter-email", "Ada@Example.com", "--dry-run")
    argv = json.loads(out.stdout.strip().splitlines()[-1])["command"]
    assert "--ingress=internal-and-cloud-load-balancing" in argv
    assert any("TRUST_IAP=true" in a and "PRESENTER_EMAILS=ada@example.com" in a for a in argv)


@pytest.mark.parametrize("args, message", [
    (["--trust-iap"], "--trust-iap needs at least one --presenter-email"),
    (["--env", "PRESENTER_TOKEN=hunter2"], "PRESENTER_TOKEN cannot be set with --env"),
    (["--env", "APP_MODE=presenter"], "APP_MODE cannot be set with --env"),
    (["--timeout", "7200"], "unrecognized arguments"),
    (["--min-instances", "5", "--max-instances", "2"], "--min-instances 5 is above --max-instances 2"),
])
def test_bad_deploy_options_are_refused_with_a_clear_message(args, message) -> None:
    out = deploy("--image", IMAGE, *args, "--dry-run")
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "hunter2" not in out.stdout + out.stderr


def test_without_gcloud_the_real_deploy_says_what_to_do(tmp_path: Path) -> None:
    out = deploy("--image", IMAGE, path=str(tmp_path))  # no gcloud on PATH (and no Google call from a test)
    assert out.returncode == 2 and "gcloud is not installed" in out.stderr
