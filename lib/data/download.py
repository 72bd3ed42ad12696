"""The Oxford-IIIT Pet dataset: download from its official address (resumable, size and MD5 checked)
and safe extraction.

`make data` (`python -m lib data download --dest data/pets`) leaves `DIR/images/*.jpg` and
`DIR/annotations/`; every page and command then finds the photos there (or in `PETS_DIR`), and the
trainers and the harness hold out the official test list.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

import httpx

from lib.data.layout import extracted_marker
from lib.data.split import read_official_split
from lib.errors import UserError

__all__ = [
    "Archive", "ARCHIVES", "OFFICIAL_BASE_URL", "DownloadProgress", "download_file", "safe_extract",
    "download_dataset", "parse_expect",
]

OFFICIAL_BASE_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data"


@dataclass(frozen=True)
class Archive:
    """One published archive: file name under the base URL, its size in bytes and MD5."""

    name: str
    size_bytes: int | None
    md5: str | None


# Sizes as published in TensorFlow Datasets' checksums for this dataset, MD5s as in torchvision's
# OxfordIIITPet: two independent records of the same files.
ARCHIVES: tuple[Archive, ...] = (
    Archive("images.tar.gz", 791_918_971, "5c4f3ee8e5d25df40f4fd59a7f44e54c"),
    Archive("annotations.tar.gz", 19_173_078, "95a8c909bbe2e81eed6a22bccdf3f68f"),
)


def parse_expect(specs: Iterable[str], archives: Iterable[Archive] = ARCHIVES) -> tuple[Archive, ...]:
    """`archives` with the size and MD5 of some replaced by `NAME=SIZE:MD5` specs (a mirror, or a test's archives)."""
    by_name = {a.name: a for a in archives}
    for spec in specs:
        name, _, value = spec.partition("=")
        size, _, md5 = value.partition(":")
        if name not in by_name:
            raise UserError(f"--expect {spec}: {name!r} is not one of the archives ({', '.join(by_name)})")
        if not size.isdigit() or len(md5) != 32 or any(c not in "0123456789abcdef" for c in md5.lower()):
            raise UserError(f"--expect {spec}: write NAME=SIZE:MD5, the size in bytes and the 32-digit hex MD5")
        by_name[name] = Archive(name, int(size), md5.lower())
    return tuple(by_name.values())


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands: bytes so far (including a resumed part), total if known."""

    name: str
    done_bytes: int
    total_bytes: int | None
    resumed_from_bytes: int = 0


ProgressFn = Callable[[DownloadProgress], None]


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, archive: Archive) -> None:
    size = path.stat().st_size
    if archive.size_bytes is not None and size != archive.size_bytes:
        raise UserError(f"{path.name}: {size} bytes, expected {archive.size_bytes}; the download is incomplete "
                        "or the file changed; run the command again to resume")
    if archive.md5 is not None:
        got = _md5(path)
        if got != archive.md5:
            raise UserError(f"{path.name}: MD5 {got} does not match the published {archive.md5}; the file is "
                            "corrupt and was deleted, run the command again to download it afresh")


def download_file(url: str, dest: Path, archive: Archive, *, progress: ProgressFn | None = None,
                  client: httpx.Client | None = None, attempts: int = 5) -> Path:
    """Download `url` to `dest` through `dest.part`, resuming with HTTP Range after a dropped connection.

    A finished file is checked (size, MD5) before it takes its final name; a bad one is deleted.
    """
    if dest.exists():
        _verify(dest, archive)
        return dest
    part = dest.with_name(dest.name + ".part")
    own = client is None
    client = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=15.0), follow_redirects=True)
    try:
        last_error: Exception | None = None
        for attempt in range(1, attempts + 1):
            have = part.stat().st_size if part.exists() else 0
            if archive.size_bytes is not None and have >= archive.size_bytes:
                break
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                with client.stream("GET", url, headers=headers) as response:
                    if response.status_code == 416 and have:  # nothing left to send: the part is whole
                        break
                    if response.status_code >= 500:
                        raise UserError(f"{url}: HTTP {response.status_code} (the server is having trouble); "
                                        f"run `make data` again later to resume")
                    if response.status_code not in (200, 206):
                        raise UserError(f"{url}: HTTP {response.status_code}; is the address right?")
                    if response.status_code == 200 and have:
                        have = 0  # the server ignored Range: start over rather than duplicate bytes
                    length = response.headers.get("content-length")
                    total = have + int(length) if length and length.isdigit() else archive.size_bytes
                    with open(part, "ab" if have else "wb") as out:
                        done = have
                        # Raw bytes as they arrive: a cut connection keeps everything received, and a
                        # server's Content-Encoding never alters the archive on disk.
                        for chunk in response.iter_raw():
                            out.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(DownloadProgress(dest.name, done, total, have))
                if archive.size_bytes is None or part.stat().st_size >= archive.size_bytes:
                    break
            except httpx.TransportError as exc:
                last_error = exc
                time.sleep(min(0.2 * 2**attempt, 5.0))
        else:
            raise UserError(f"{url}: the download kept failing ({last_error}); run the command again to resume "
                            f"from {part.stat().st_size if part.exists() else 0} bytes")
    finally:
        if own:
            client.close()
    try:
        _verify(part, archive)
    except UserError:
        if archive.md5 is not None and part.stat().st_size == (archive.size_bytes or part.stat().st_size):
            part.unlink()  # whole but wrong: resuming it can never succeed
        raise
    os.replace(part, dest)
    return dest


def safe_extract(archive_path: Path, dest: Path) -> list[str]:
    """Extract a tar(.gz) into `dest`, refusing absolute paths, `..`, links and devices; returns member names."""
    dest = dest.resolve()
    with tarfile.open(archive_path) as tar:
        members = tar.getmembers()
        for m in members:
            path = PurePosixPath(m.name)
            if path.is_absolute() or ".." in path.parts:
                raise UserError(f"{archive_path.name}: member {m.name!r} would land outside {dest}; refused")
            if not (m.isfile() or m.isdir()):
                raise UserError(f"{archive_path.name}: member {m.name!r} is a link or device; refused")
            if not (dest / m.name).resolve().is_relative_to(dest):
                raise UserError(f"{archive_path.name}: member {m.name!r} would land outside {dest}; refused")
        tar.extractall(dest, members=members, filter="data")
    return [m.name for m in members]


def download_dataset(dest: Path | str, *, base_url: str = OFFICIAL_BASE_URL,
                     archives: Iterable[Archive] = ARCHIVES, progress: ProgressFn | None = None,
                     keep_archives: bool = True) -> dict[str, int]:
    """Fetch and extract every archive into `dest`; returns the counts of images and split entries."""
    dest = Path(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {dest}: {exc}") from None
    for archive in archives:
        marker = extracted_marker(dest, archive.name)
        if marker.exists():
            continue
        path = download_file(f"{base_url.rstrip('/')}/{archive.name}", dest / archive.name, archive, progress=progress)
        safe_extract(path, dest)
        marker.write_text("ok\n")
        if not keep_archives:
            path.unlink()
    images = dest / "images"
    count = sum(1 for p in images.iterdir() if p.suffix.lower() == ".jpg") if images.is_dir() else 0
    split = read_official_split(dest) if (dest / "annotations" / "test.txt").exists() else {}
    return {
        "images": count,
        "trainval": sum(1 for s in split.values() if s == "trainval"),
        "test": sum(1 for s in split.values() if s == "test"),
    }
