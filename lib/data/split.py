"""Which photos a tuned model never saw: the one held-out split, shared by both trainers and the harness.

The dataset's official `annotations/{trainval,test}.txt` lists when the folder has them, else a hash of
each file name (two photos per breed held out): a pure function of names, so every machine agrees.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from lib.data.photos import IMAGE_SUFFIXES, Photo, list_photos
from lib.errors import UserError

__all__ = [
    "Split", "PhotoSet", "split_photos", "select_split", "select_photos", "official_split_dir",
    "read_official_split", "default_data_dir",
]

Split = Literal["train", "test", "all"]


def _rank_key(photo: Photo) -> str:
    return hashlib.sha256(photo.id.encode()).hexdigest()


def split_photos(photos: Iterable[Photo], test_per_breed: int = 2) -> tuple[list[Photo], list[Photo]]:
    """(train, test): per breed, the `test_per_breed` photos with the smallest name hash are held out."""
    by_breed: dict[str, list[Photo]] = {}
    for photo in photos:
        by_breed.setdefault(photo.breed, []).append(photo)
    train, test = [], []
    for members in by_breed.values():
        ranked = sorted(members, key=_rank_key)
        # Keep at least one training photo for every breed, however small the folder.
        n_test = min(test_per_breed, max(0, len(ranked) - 1))
        test.extend(ranked[:n_test])
        train.extend(ranked[n_test:])
    return sorted(train, key=lambda p: p.id), sorted(test, key=lambda p: p.id)


def select_split(photos: list[Photo], split: Split, test_per_breed: int = 2) -> list[Photo]:
    """The photos of one split (`all` returns them unchanged)."""
    if split == "all":
        return photos
    train, test = split_photos(photos, test_per_breed)
    return train if split == "train" else test


def official_split_dir(folder: Path) -> Path | None:
    """The dataset root holding `annotations/test.txt` for a folder of photos (itself or its parent)."""
    for root in (folder, folder.parent):
        if (root / "annotations" / "test.txt").is_file() and (root / "annotations" / "trainval.txt").is_file():
            return root
    return None


def read_official_split(root: Path) -> dict[str, Literal["trainval", "test"]]:
    """Photo id -> "trainval" or "test", from the dataset's own lists (`Abyssinian_100 1 1 1` lines)."""
    split: dict[str, Literal["trainval", "test"]] = {}
    for name in ("trainval", "test"):
        path = Path(root) / "annotations" / f"{name}.txt"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise UserError(f"{path}: missing; download the annotations (python -m lib data download)") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            photo_id = line.split()[0]
            if photo_id in split:
                raise UserError(f"{path}:{number}: {photo_id} is listed in both splits")
            split[photo_id] = name  # type: ignore[assignment]
    return split


@dataclass(frozen=True)
class PhotoSet:
    """The photos to ask, how the split was chosen, and how many images were skipped for lack of a label."""

    photos: tuple[Photo, ...]
    split_source: Literal["official", "hash", "none"]
    unlabelled: int


def _interleave(photos: list[Photo]) -> list[Photo]:
    """Round-robin over breeds, so `--limit 37` asks one photo of every breed instead of 37 Abyssinians."""
    seen: dict[str, int] = defaultdict(int)
    rank: dict[str, int] = {}
    for photo in sorted(photos, key=lambda p: p.id):
        rank[photo.id] = seen[photo.breed]
        seen[photo.breed] += 1
    return sorted(photos, key=lambda p: (rank[p.id], p.breed.lower()))


def select_photos(data_dir: Path | str, split: Split = "test", limit: int | None = None) -> PhotoSet:
    """The labelled photos of `split`: the dataset's official lists where present, else the project's hash split."""
    folder = Path(data_dir)
    if (folder / "images").is_dir():
        folder = folder / "images"
    photos = list_photos(folder)  # UserError for a missing folder, no photos, or only unlabelled ones
    images = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    unlabelled = images - len(photos)
    split_root = official_split_dir(folder)
    if split == "all":
        chosen, source = photos, "none"
    elif split_root is not None:
        official = read_official_split(split_root)
        wanted = "test" if split == "test" else "trainval"
        chosen, source = [p for p in photos if official.get(p.id) == wanted], "official"
        if not chosen:
            raise UserError(f"{folder}: none of the {len(photos)} photos is in the official {wanted} list "
                            f"({split_root / 'annotations'}); pass --split all to use them all")
    else:
        chosen, source = select_split(photos, split), "hash"
        if not chosen:
            raise UserError(f"{folder}: the {split} split of these {len(photos)} photos is empty (a breed needs "
                            "two or more photos to hold one out); pass --split all")
    ordered = _interleave(chosen)
    if limit is not None:
        if limit < 1:
            raise UserError(f"--limit must be at least 1, got {limit}")
        ordered = ordered[:limit]
    return PhotoSet(tuple(ordered), source, unlabelled)


def default_data_dir(pets_dir: Path | None) -> Path:
    """PETS_DIR, or the shared photos beside the checkout (where the demo keeps them)."""
    from lib.settings import REPO_ROOT

    return Path(pets_dir) if pets_dir else REPO_ROOT.parent / "shared" / "pets"
