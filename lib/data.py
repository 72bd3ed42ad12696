"""Labelled pet photos: any folder named like Oxford-IIIT Pet, and the project's held-out split.

The split is a pure function of file names, so the trainer, the evaluation harness and the pages
agree on which photos a tuned model never saw, on any machine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

from lib.breeds import breed_from_filename, species_of
from lib.errors import UserError

__all__ = ["Photo", "list_photos", "split_photos", "select_split", "Split", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})
Split = Literal["train", "test", "all"]


@dataclass(frozen=True)
class Photo:
    """One labelled photo: `id` is the file name without its suffix (`Abyssinian_101`)."""

    id: str
    path: Path
    breed: str
    species: str


def list_photos(folder: Path | str, *, limit: int | None = None) -> list[Photo]:
    """Photos in `folder` whose names say their breed, sorted by id; raises UserError if none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder; set PETS_DIR or pass --data with a folder of pet photos")
    photos, unlabelled = [], 0
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        breed = breed_from_filename(path.name)
        if breed is None:
            unlabelled += 1
            continue
        photos.append(Photo(path.stem, path, breed, species_of(breed) or "unknown"))
    if not photos:
        hint = (
            f" ({unlabelled} images have names that do not start with a breed id, like Abyssinian_101.jpg)"
            if unlabelled else ""
        )
        raise UserError(f"{folder}: no labelled pet photos found{hint}")
    return photos[:limit] if limit else photos


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
