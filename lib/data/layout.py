"""Where the photos are: the one default folder, and the one reading of a folder's layout.

A photo folder is either flat (`<breed>_<n>.jpg` files, like `../shared/pets`) or the downloaded
dataset (`DIR/images/*.jpg` beside `DIR/annotations/{trainval,test}.txt`, what `make data` leaves).
Every caller that lists photos resolves its folder here, so a page, the CLI, the harness and both
trainers accept either layout and refuse a half-downloaded dataset with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lib.errors import UserError
from lib.settings import REPO_ROOT

__all__ = [
    "GET_PHOTOS", "DATASET_ARCHIVES", "DEFAULT_DOWNLOAD_DIR", "SHARED_PHOTOS_DIR", "PhotoDir", "default_data_dir",
    "resolve_photo_dir", "extracted_marker", "incomplete_download",
]

# What a newcomer without photos should do; pages and commands end their "no photos" messages with it.
GET_PHOTOS = ("run `make data` to download the Oxford-IIIT Pet dataset into data/pets, "
              "or set PETS_DIR to a folder of pet photos")

# The archives `make data` fetches; `lib.data.download.ARCHIVES` describes the same files (size, MD5).
DATASET_ARCHIVES = ("images.tar.gz", "annotations.tar.gz")
DEFAULT_DOWNLOAD_DIR = REPO_ROOT / "data" / "pets"  # where `make data` downloads to (git-ignored)
SHARED_PHOTOS_DIR = REPO_ROOT.parent / "shared" / "pets"  # the demo's sample photos beside the checkout


def default_data_dir(pets_dir: Path | str | None = None, *, download_dir: Path = DEFAULT_DOWNLOAD_DIR,
                     shared_dir: Path = SHARED_PHOTOS_DIR) -> Path:
    """The photo folder: PETS_DIR when set, else `<repo>/data/pets` once `make data` made it, else ../shared/pets.

    Callers pass `settings.pets_dir`; the two fallbacks are parameters only so tests can move them.
    """
    if pets_dir:
        return Path(pets_dir)
    # A half-finished `make data` counts as made: pointing there names the problem and the fix.
    return download_dir if download_dir.is_dir() else shared_dir


@dataclass(frozen=True)
class PhotoDir:
    """A resolved folder: `images` holds the image files; `lists` holds `annotations/` (official split) or is None."""

    given: Path
    images: Path
    lists: Path | None

    @property
    def layout(self) -> str:
        """"dataset" for `DIR/images/`, "flat" for photos directly in the folder."""
        return "dataset" if self.images != self.given else "flat"


def extracted_marker(dest: Path, archive_name: str) -> Path:
    """The file the downloader writes once `archive_name` is fully extracted into `dest`."""
    return Path(dest) / f".{archive_name}.extracted"


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 2**20:.1f} MiB"


def incomplete_download(folder: Path | str) -> str | None:
    """What a half-downloaded dataset folder holds ("images.tar.gz.part: 12.0 MiB so far; ..."), or None.

    A folder with no trace of the downloader (no archive, `.part` file or extraction marker) is not a
    download: a flat folder or a dataset extracted by hand.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    parts = {p.name for p in folder.glob("*.part")}
    traces = parts or any((folder / n).exists() or extracted_marker(folder, n).exists() for n in DATASET_ARCHIVES)
    if not traces or all(extracted_marker(folder, n).exists() for n in DATASET_ARCHIVES):
        return None
    what = []
    for name in DATASET_ARCHIVES:
        if extracted_marker(folder, name).exists():
            what.append(f"{name}: extracted")
        elif (folder / name).exists():
            what.append(f"{name}: downloaded ({_size(folder / name)}), not extracted")
        elif f"{name}.part" in parts:
            what.append(f"{name}.part: {_size(folder / (name + '.part'))} so far")
        else:
            what.append(f"{name}: not downloaded")
    strays = parts - {f"{n}.part" for n in DATASET_ARCHIVES}
    what.extend(f"{p}: not one of the dataset's archives" for p in sorted(strays))
    if not (folder / "images").is_dir():
        what.append("no images/ yet")
    return "; ".join(what)


def resolve_photo_dir(folder: Path | str) -> PhotoDir:
    """Read a folder's layout (flat, or the dataset's `images/` + `annotations/`); UserError if it has no photos yet."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder; {GET_PHOTOS}")
    half = incomplete_download(folder)
    if half is not None:
        raise UserError(f"{folder}: the dataset is only partly downloaded ({half}); run `make data` again to resume")
    images = folder / "images" if (folder / "images").is_dir() else folder
    # The official lists sit beside images/, whether the folder given is the dataset or its images/.
    candidates = [folder] if images != folder else [folder] + ([folder.parent] if folder.name == "images" else [])
    lists = next((root for root in candidates if _has_lists(root)), None)
    return PhotoDir(folder, images, lists)


def _has_lists(root: Path) -> bool:
    return all((root / "annotations" / f"{name}.txt").is_file() for name in ("trainval", "test"))
