"""Which photos a tuned model never saw: the one held-out split, shared by both trainers and the harness.

The dataset's official `annotations/{trainval,test}.txt` lists when the folder has them (what `make data`
downloads), else a hash of each file name with two photos per breed held out: a pure function of names,
so every machine, trainer and evaluation agrees. There is deliberately no knob: a second split size
would be a second split, and Tuning and Accuracy would stop showing the same figure for the same model.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from lib.data.layout import resolve_photo_dir
from lib.data.photos import Photo, image_files, list_photos
from lib.errors import UserError

__all__ = [
    "Split", "SplitSource", "HASH_TEST_PER_BREED", "HeldOutSplit", "PhotoSet", "split_photos", "held_out_split",
    "select_photos", "official_split_dir", "read_official_split",
]

Split = Literal["train", "test", "all"]
SplitSource = Literal["official", "hash"]
HASH_TEST_PER_BREED = 2  # photos per breed held out when a folder has no official lists


def _rank_key(photo: Photo) -> str:
    return hashlib.sha256(photo.id.encode()).hexdigest()


def split_photos(photos: Iterable[Photo]) -> tuple[list[Photo], list[Photo]]:
    """The hash split (train, test): per breed, the two photos with the smallest name hash are held out."""
    by_breed: dict[str, list[Photo]] = {}
    for photo in photos:
        by_breed.setdefault(photo.breed, []).append(photo)
    train, test = [], []
    for members in by_breed.values():
        ranked = sorted(members, key=_rank_key)
        # Keep at least one training photo for every breed, however small the folder.
        n_test = min(HASH_TEST_PER_BREED, max(0, len(ranked) - 1))
        test.extend(ranked[:n_test])
        train.extend(ranked[n_test:])
    return sorted(train, key=lambda p: p.id), sorted(test, key=lambda p: p.id)


def official_split_dir(folder: Path | str) -> Path | None:
    """The dataset root holding `annotations/{trainval,test}.txt` for a photo folder, or None."""
    return resolve_photo_dir(folder).lists


def read_official_split(root: Path | str) -> dict[str, Literal["trainval", "test"]]:
    """Photo id -> "trainval" or "test", from the dataset's own lists (`Abyssinian_100 1 1 1` lines)."""
    split: dict[str, Literal["trainval", "test"]] = {}
    names: tuple[Literal["trainval", "test"], ...] = ("trainval", "test")
    for name in names:
        path = Path(root) / "annotations" / f"{name}.txt"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise UserError(f"{path}: missing; run `make data` again to download the annotations") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            photo_id = line.split()[0]
            if photo_id in split:
                raise UserError(f"{path}:{number}: {photo_id} is listed in both splits")
            split[photo_id] = name
    return split


@dataclass(frozen=True)
class HeldOutSplit:
    """A folder's one split: photos to train on, photos held out, where the split came from, unlabelled images."""

    train: tuple[Photo, ...]
    test: tuple[Photo, ...]
    source: SplitSource
    unlabelled: int


def held_out_split(data_dir: Path | str) -> HeldOutSplit:
    """The held-out split of a photo folder: the official lists where present, else the hash split.

    Photos that neither official list names are in neither part. UserError for a folder without photos.
    """
    photos = list_photos(data_dir)  # UserError for a missing folder, a half download, or no labelled photo
    unlabelled = len(image_files(data_dir)) - len(photos)
    root = official_split_dir(data_dir)
    if root is None:
        train, test = split_photos(photos)
        return HeldOutSplit(tuple(train), tuple(test), "hash", unlabelled)
    official = read_official_split(root)
    return HeldOutSplit(
        tuple(p for p in photos if official.get(p.id) == "trainval"),
        tuple(p for p in photos if official.get(p.id) == "test"),
        "official", unlabelled,
    )


@dataclass(frozen=True)
class PhotoSet:
    """The photos to ask, how the split was chosen, and how many images were skipped for lack of a label."""

    photos: tuple[Photo, ...]
    split_source: Literal["official", "hash", "none"]
    unlabelled: int


def _interleave(photos: Iterable[Photo]) -> list[Photo]:
    """Round-robin over breeds, so `--limit 37` asks one photo of every breed instead of 37 Abyssinians."""
    seen: dict[str, int] = defaultdict(int)
    rank: dict[str, int] = {}
    ordered = sorted(photos, key=lambda p: p.id)
    for photo in ordered:
        rank[photo.id] = seen[photo.breed]
        seen[photo.breed] += 1
    return sorted(ordered, key=lambda p: (rank[p.id], p.breed.lower()))


def select_photos(data_dir: Path | str, split: Split = "test", limit: int | None = None) -> PhotoSet:
    """The labelled photos of one part of the held-out split (`all`: every labelled photo), breeds interleaved."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    held = held_out_split(data_dir)
    source: Literal["official", "hash", "none"]
    if split == "all":
        chosen, source = list_photos(data_dir), "none"  # with official lists, photos outside both count too
    else:
        chosen, source = list(held.test if split == "test" else held.train), held.source
    if not chosen:
        where = resolve_photo_dir(data_dir)
        if held.source == "official":
            wanted = "test" if split == "test" else "trainval"
            raise UserError(f"{where.images}: none of its photos is in the official {wanted} list "
                            f"({where.lists}/annotations); pass --split all to use them all")
        raise UserError(f"{where.images}: the {split} split of these photos is empty (a breed needs two or more "
                        "photos to hold one out); pass --split all")
    ordered = _interleave(chosen)
    return PhotoSet(tuple(ordered[:limit] if limit is not None else ordered), source, held.unlabelled)
