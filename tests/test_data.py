"""Photo folders and the held-out split that the trainer and the evaluation share."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.breeds import BREED_IDS
from lib.data import list_photos, select_split, split_photos
from lib.errors import UserError


def test_the_shared_photos_are_labelled(pets: Path) -> None:
    photos = list_photos(pets)
    assert len(photos) == 259
    assert {p.breed for p in photos} == set(BREED_IDS)
    assert {p.species for p in photos} == {"cat", "dog"}


def test_split_holds_out_two_per_breed_and_never_overlaps(pets: Path) -> None:
    train, test = split_photos(list_photos(pets), test_per_breed=2)
    assert len(test) == 74 and len(train) == 185
    assert not {p.id for p in train} & {p.id for p in test}
    assert all(sum(p.breed == b for p in test) == 2 for b in BREED_IDS)


def test_split_is_a_function_of_names_not_of_order_or_folder(pets: Path) -> None:
    photos = list_photos(pets)
    _, test_a = split_photos(photos)
    _, test_b = split_photos(list(reversed(photos)))
    assert [p.id for p in test_a] == [p.id for p in test_b]
    assert [p.id for p in select_split(photos, "test")] == [p.id for p in test_a]
    assert select_split(photos, "all") == photos


def test_a_breed_with_one_photo_keeps_it_for_training(tmp_path: Path, pets: Path) -> None:
    (tmp_path / "pug_1.jpg").write_bytes(next(pets.glob("pug_*.jpg")).read_bytes())
    train, test = split_photos(list_photos(tmp_path))
    assert [p.id for p in train] == ["pug_1"] and test == []


def test_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no labelled pet photos"):
        list_photos(tmp_path)


def test_unlabelled_photos_are_counted_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "IMG_0001.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="1 images have names that do not start with a breed id"):
        list_photos(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such folder"):
        list_photos(tmp_path / "nope")
