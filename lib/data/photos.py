"""Labelled pet photos: any folder whose file names say the breed, as Oxford-IIIT Pet's do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lib.breeds import breed_from_filename, species_of
from lib.errors import UserError

__all__ = ["Photo", "list_photos", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


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
