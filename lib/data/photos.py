"""Labelled pet photos: any folder whose file names say the breed, as Oxford-IIIT Pet's do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lib.breeds import breed_from_filename, species_of
from lib.data.layout import GET_PHOTOS, PhotoDir, resolve_photo_dir
from lib.errors import UserError

__all__ = ["Photo", "list_photos", "image_files", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp"})


@dataclass(frozen=True)
class Photo:
    """One labelled photo: `id` is the file name without its suffix (`Abyssinian_101`)."""

    id: str
    path: Path
    breed: str
    species: str


def _files(where: PhotoDir) -> list[Path]:
    return [p for p in sorted(where.images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]


def image_files(folder: Path | str, *, limit: int | None = None) -> list[Path]:
    """Every image file in a photo folder (flat or the dataset's `images/`), labelled or not, sorted by name."""
    where = resolve_photo_dir(folder)
    files = _files(where)
    if not files:
        raise UserError(f"{where.images}: no .jpg/.jpeg/.png/.webp photos; {GET_PHOTOS}")
    return files[:limit] if limit else files


def list_photos(folder: Path | str, *, limit: int | None = None) -> list[Photo]:
    """Photos in a photo folder (flat or the dataset's `images/`) whose names say their breed, sorted by id.

    Raises UserError for a missing folder, a half-downloaded dataset, or no labelled photo.
    """
    where = resolve_photo_dir(folder)
    photos, unlabelled = [], 0
    for path in _files(where):
        breed = breed_from_filename(path.name)
        if breed is None:
            unlabelled += 1
            continue
        photos.append(Photo(path.stem, path, breed, species_of(breed) or "unknown"))
    if not photos:
        hint = (
            f" ({unlabelled} images have names that do not start with a breed id, like Abyssinian_101.jpg)"
            if unlabelled else f"; {GET_PHOTOS}"
        )
        raise UserError(f"{where.images}: no labelled pet photos found{hint}")
    return photos[:limit] if limit else photos
