"""A loopback stand-in for the Oxford-IIIT Pet download site: a small but real mini-dataset built from real
photos, served with HTTP Range, able to cut a connection half-way or go down, like a flaky mirror.

    dataset = build_mini_dataset(pets_dir(), per_breed=3)            # all 37 breeds, 111 real photos
    with ArchiveServer(dataset.archives, cut_first={"images.tar.gz"}) as server:
        subprocess.run(["make", "data", f"DATA_DIR={dest}", f"DATA_BASE_URL={server.url}",
                        f"DATA_EXPECT={dataset.expect}"], check=True)
    # dest/images/*.jpg and dest/annotations/{trainval,test}.txt, as `make data` leaves the real dataset

`MiniDataset.expect` is what `make data` takes as DATA_EXPECT (and `expect_args()` what `python -m lib data
download` takes): the archives' own sizes and MD5s instead of the published ones. `ArchiveServer.requests`
records every GET (file name, Range header) so a test can see a resume ask for exactly the missing bytes.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable

from lib.breeds import BREED_IDS, species_of
from lib.data import Archive, Photo, list_photos

__all__ = ["MiniDataset", "build_mini_dataset", "official_line", "tar_gz", "ArchiveServer"]


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A .tar.gz holding `files` (member name -> content), in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def official_line(photo_id: str, breed: str) -> str:
    """One line of `annotations/{trainval,test}.txt`: `Image CLASS-ID SPECIES BREED-ID` (`Abyssinian_100 1 1 1`).

    CLASS-ID counts all 37 breeds from 1 in the dataset's order, SPECIES is 1 for cats and 2 for dogs, BREED-ID
    counts from 1 within the species.
    """
    species = species_of(breed)
    same = [b for b in BREED_IDS if species_of(b) == species]
    return f"{photo_id} {BREED_IDS.index(breed) + 1} {1 if species == 'cat' else 2} {same.index(breed) + 1}"


@dataclass(frozen=True)
class MiniDataset:
    """The two archives (`images.tar.gz`, `annotations.tar.gz`) and which photo ids each official list names."""

    archives: dict[str, bytes]
    trainval: tuple[str, ...]
    test: tuple[str, ...]

    def described(self) -> tuple[Archive, ...]:
        """The archives as `lib.data.Archive`s (name, size, MD5), for `download_dataset(archives=...)`."""
        return tuple(Archive(n, len(d), hashlib.md5(d).hexdigest()) for n, d in self.archives.items())

    @property
    def expect(self) -> str:
        """`make data`'s DATA_EXPECT: `images.tar.gz=SIZE:MD5 annotations.tar.gz=SIZE:MD5`."""
        return " ".join(f"{a.name}={a.size_bytes}:{a.md5}" for a in self.described())

    def expect_args(self) -> list[str]:
        """`python -m lib data download` arguments: `--expect NAME=SIZE:MD5` for each archive."""
        return [arg for spec in self.expect.split() for arg in ("--expect", spec)]


def build_mini_dataset(source: Path, *, breeds: Iterable[str] | None = None, per_breed: int = 3,
                       test_per_breed: int = 1) -> MiniDataset:
    """Archives laid out like the official ones, from the first `per_breed` real photos of each breed in `source`.

    Per breed the last `test_per_breed` photos (by id) go to test.txt, the rest to trainval.txt: a choice the
    project's hash split would not make, so a test can tell which split a reader used.
    """
    wanted = set(breeds) if breeds is not None else set(BREED_IDS)
    chosen: dict[str, list[Photo]] = {}
    for photo in list_photos(source):
        if photo.breed in wanted and len(chosen.setdefault(photo.breed, [])) < per_breed:
            chosen[photo.breed].append(photo)
    trainval: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    images: dict[str, bytes] = {}
    for breed in BREED_IDS:
        for i, photo in enumerate(chosen.get(breed, [])):
            images[f"images/{photo.id}.jpg"] = photo.path.read_bytes()
            (test if i >= len(chosen[breed]) - test_per_breed else trainval).append((photo.id, breed))
    lists = {name: "".join(official_line(pid, b) + "\n" for pid, b in rows).encode()
             for name, rows in (("trainval", trainval), ("test", test))}
    annotations = tar_gz({"annotations/trainval.txt": lists["trainval"], "annotations/test.txt": lists["test"]})
    return MiniDataset({"images.tar.gz": tar_gz(images), "annotations.tar.gz": annotations},
                       tuple(pid for pid, _ in trainval), tuple(pid for pid, _ in test))


class ArchiveServer:
    """Serves `files` under `<url>/<name>` with HTTP Range support, on a free loopback port (a context manager).

    `cut_first`: names whose first GET sends half the promised bytes and closes (a dropped line).
    `down_after_cut`: after a cut, answer 503 to everything until a test sets `down = False`, so a download
    fails and leaves its `.part` behind. `requests` lists (name, Range header or None) for every GET.
    """

    def __init__(self, files: dict[str, bytes], *, cut_first: Iterable[str] = (), down_after_cut: bool = False) -> None:
        self.files = dict(files)
        self.cut_first, self.down_after_cut = set(cut_first), down_after_cut
        self.down = False
        self.requests: list[tuple[str, str | None]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                data = outer.files.get(name)
                header = self.headers.get("Range")
                outer.requests.append((name, header))
                if outer.down:
                    self.send_error(503, "down for maintenance")
                    return
                if data is None:
                    self.send_error(404)
                    return
                start = int(header.removeprefix("bytes=").split("-")[0]) if header else 0
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.end_headers()
                    return
                self.send_response(206 if header else 200)
                if header:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if name in outer.cut_first:
                    outer.cut_first.discard(name)
                    outer.down = outer.down_after_cut
                    self.wfile.write(data[start: start + (len(data) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return  # the connection closes with half the promised bytes
                self.wfile.write(data[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pets"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def ranges(self, name: str) -> list[str | None]:
        """The Range headers of every GET of `name`, in order (None: from the start)."""
        return [r for n, r in self.requests if n == name]

    def __enter__(self) -> "ArchiveServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
