"""Read the dashboard's Dockerfile and reproduce its image without Docker: the files it copies, its ENV, its CMD.

There is no Docker engine on the test machines, so tests start the container's own start command
in a folder holding exactly what the image holds, with exactly its environment (plus `docker run -e`
style overrides).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
VENV_BIN = Path(os.sys.executable).parent


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    name: str
    value: str


def parse(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions in order; comments and blank lines dropped, `\\` continuations joined."""
    out: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        name, _, value = full.partition(" ")
        out.append(Instruction(name.upper(), value.strip()))
    return out


def values(instructions: list[Instruction], name: str) -> list[str]:
    return [i.value for i in instructions if i.name == name]


def env(instructions: list[Instruction]) -> dict[str, str]:
    """The image's ENV (both `ENV K=V K2=V2` and legacy `ENV K V`)."""
    result: dict[str, str] = {}
    for value in values(instructions, "ENV"):
        parts = shlex.split(value)
        if parts and "=" not in parts[0]:
            result[parts[0]] = " ".join(parts[1:])
            continue
        for part in parts:
            key, _, val = part.partition("=")
            result[key] = val
    return result


def exec_form(value: str) -> list[str]:
    """A CMD/ENTRYPOINT/HEALTHCHECK CMD value as argv (JSON exec form, or shell form via /bin/sh -c)."""
    value = value.strip()
    if value.startswith("["):
        return json.loads(value)
    return ["/bin/sh", "-c", value]


def cmd(instructions: list[Instruction]) -> list[str]:
    """The last CMD, as argv."""
    return exec_form(values(instructions, "CMD")[-1])


def healthcheck(instructions: list[Instruction]) -> list[str]:
    """The HEALTHCHECK's command, as argv (options such as --interval dropped)."""
    value = values(instructions, "HEALTHCHECK")[-1]
    _, _, command = value.partition("CMD ")
    return exec_form(command)


def copies(instructions: list[Instruction]) -> list[tuple[list[str], str]]:
    """(sources, destination) for every COPY (flags such as --chown dropped)."""
    out = []
    for value in values(instructions, "COPY"):
        parts = [p for p in shlex.split(value) if not p.startswith("--")]
        out.append((parts[:-1], parts[-1]))
    return out


def dockerignore() -> list[str]:
    path = REPO / ".dockerignore"
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether `.dockerignore` keeps `relative` out of the build context (the patterns this repo uses).

    As Docker matches them: a pattern is anchored at the context's root (`data` is `./data`, not
    `lib/data`) unless it starts with `**/`; a matched folder takes everything below it.
    """
    parts = relative.split("/")
    for pattern in patterns:
        pattern = pattern.lstrip("/")
        anywhere = pattern.startswith("**/")
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(relative, pattern) or (anywhere and any(fnmatch.fnmatch(p, bare) for p in parts)):
            return True
        if any(fnmatch.fnmatch("/".join(parts[:i]), pattern) for i in range(1, len(parts))):
            return True
    return False


def build_tree(dest: Path, instructions: list[Instruction] | None = None) -> Path:
    """Copy what the image's COPY lines copy (minus .dockerignore) into `dest`, the image's WORKDIR."""
    instructions = instructions or parse()
    patterns = dockerignore()
    for sources, target in copies(instructions):
        for source in sources:
            src = REPO / source
            if src.is_dir():
                base = dest / target
                for file in src.rglob("*"):
                    rel = file.relative_to(REPO).as_posix()
                    if file.is_file() and not ignored(rel, patterns):
                        out = base / file.relative_to(src)
                        out.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(file, out)
            elif not ignored(source, patterns):
                out = dest / target if not target.endswith("/") else dest / target / src.name
                if target in ("./", "."):
                    out = dest / src.name
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, out)
    return dest


def container_env(instructions: list[Instruction], port: int, home: Path, **overrides: str) -> dict[str, str]:
    """The process environment the container would see: image ENV, PORT as Cloud Run sets it, overrides."""
    from lib.settings import ENV

    base = {k: v for k, v in os.environ.items() if k not in ENV and not k.startswith("STREAMLIT_")}
    base["PATH"] = f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}"  # `streamlit` and `python` as in the image
    return {**base, **env(instructions), "PORT": str(port), "HOME": str(home), **overrides}


@dataclass
class Container:
    """A running 'container': the image's start command in a copy of the image's files."""

    proc: subprocess.Popen
    url: str
    log: Path

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(workdir: Path, port: int, *, wait_s: float = 60.0, **overrides: str) -> Container:
    """Build the tree under `workdir/app` and run the image's CMD there; wait until /_stcore/health is 200."""
    instructions = parse()
    app = build_tree(workdir / "app", instructions)
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    log = workdir / "dashboard.log"
    environ = container_env(instructions, port, home, **overrides)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd(instructions), cwd=app, env=environ, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the dashboard exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                return Container(proc, url, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the dashboard did not become healthy in {wait_s:.0f} s: {log.read_text()[-2000:]}")
