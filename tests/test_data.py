"""Photo folders (flat, or the dataset's layout), the one default folder, and the one held-out split that both
trainers and the harness share."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.breeds import BREED_IDS
from lib.data import (
    GET_PHOTOS,
    default_data_dir,
    held_out_split,
    image_files,
    list_photos,
    resolve_photo_dir,
    select_photos,
    split_photos,
)
from lib.errors import UserError
from lib.finetune import load_split
from testkit.evalkit import make_photos


def dataset_layout(root: Path, *, test: list[str], trainval: list[str], per_breed: int = 3) -> Path:
    """A folder laid out as `make data` leaves it: images/ and annotations/{trainval,test}.txt."""
    make_photos(root / "images", per_breed=per_breed)
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "test.txt").write_text("".join(f"{i} 1 1 1\n" for i in test))
    (root / "annotations" / "trainval.txt").write_text("".join(f"{i} 1 1 1\n" for i in trainval))
    for name in ("images.tar.gz", "annotations.tar.gz"):
        (root / f".{name}.extracted").write_text("ok\n")
    return root


def test_the_shared_photos_are_labelled(pets: Path) -> None:
    photos = list_photos(pets)
    assert len(photos) == 259
    assert {p.breed for p in photos} == set(BREED_IDS)
    assert {p.species for p in photos} == {"cat", "dog"}


def test_the_hash_split_holds_out_two_per_breed_and_never_overlaps(pets: Path) -> None:
    train, test = split_photos(list_photos(pets))
    assert len(test) == 74 and len(train) == 185
    assert not {p.id for p in train} & {p.id for p in test}
    assert all(sum(p.breed == b for p in test) == 2 for b in BREED_IDS)


def test_the_hash_split_is_a_function_of_names_not_of_order_or_folder(pets: Path) -> None:
    photos = list_photos(pets)
    _, test_a = split_photos(photos)
    _, test_b = split_photos(list(reversed(photos)))
    assert [p.id for p in test_a] == [p.id for p in test_b]
    held = held_out_split(pets)
    assert held.source == "hash" and [p.id for p in held.test] == [p.id for p in test_a]
    assert sorted(p.id for p in select_photos(pets, "all").photos) == [p.id for p in photos]


def test_a_breed_with_one_photo_keeps_it_for_training(tmp_path: Path, pets: Path) -> None:
    (tmp_path / "pug_1.jpg").write_bytes(next(pets.glob("pug_*.jpg")).read_bytes())
    train, test = split_photos(list_photos(tmp_path))
    assert [p.id for p in train] == ["pug_1"] and test == []


def test_a_downloaded_dataset_is_read_from_its_images_folder_and_holds_out_its_official_test_list(
        tmp_path: Path) -> None:
    root = dataset_layout(tmp_path / "pets", test=["pug_1", "Bengal_3"], trainval=["pug_2", "pug_3", "Bengal_1"])
    assert resolve_photo_dir(root).layout == "dataset" and resolve_photo_dir(root).lists == root
    assert {p.path.parent for p in list_photos(root)} == {root / "images"}
    held = held_out_split(root)
    assert held.source == "official"
    assert [p.id for p in held.test] == ["Bengal_3", "pug_1"]
    assert [p.id for p in held.train] == ["Bengal_1", "pug_2", "pug_3"]  # photos in neither list are in neither part
    # Pointing at images/ itself finds the lists beside it.
    assert [p.id for p in held_out_split(root / "images").test] == ["Bengal_3", "pug_1"]


def test_both_trainers_and_the_harness_hold_out_the_same_photos(tmp_path: Path, pets: Path) -> None:
    root = dataset_layout(tmp_path / "ds", test=["pug_1", "beagle_2"], trainval=["pug_2", "beagle_1", "beagle_3"])
    for folder in (pets, root):
        held = held_out_split(folder)  # what the local trainer trains and scores on
        train, test = load_split(folder)  # the Gemma trainer
        assert [p.id for p in train] == [p.id for p in held.train] and [p.id for p in test] == [p.id for p in held.test]
        assert {p.id for p in select_photos(folder, "test").photos} == {p.id for p in held.test}  # the harness
        assert {p.id for p in select_photos(folder, "train").photos} == {p.id for p in held.train}


def test_image_files_lists_unlabelled_images_too(tmp_path: Path) -> None:
    make_photos(tmp_path / "pets" / "images", per_breed=1)
    (tmp_path / "pets" / "images" / "holiday.jpg").write_bytes(b"x")
    names = [p.name for p in image_files(tmp_path / "pets")]
    assert "holiday.jpg" in names and len(names) == 5
    assert len(list_photos(tmp_path / "pets")) == 4


def test_the_photo_folder_is_pets_dir_else_the_download_once_made_else_the_shared_photos(tmp_path: Path) -> None:
    download, shared = tmp_path / "repo" / "data" / "pets", tmp_path / "shared" / "pets"
    assert default_data_dir(None, download_dir=download, shared_dir=shared) == shared
    download.mkdir(parents=True)  # `make data` started (even if it has not finished)
    assert default_data_dir(None, download_dir=download, shared_dir=shared) == download
    assert default_data_dir(tmp_path / "mine", download_dir=download, shared_dir=shared) == tmp_path / "mine"
    assert default_data_dir("") == default_data_dir(None)  # an empty PETS_DIR is unset


@pytest.mark.parametrize("leftovers, what", [
    ({"images.tar.gz.part": b"x" * 1000}, "images.tar.gz.part: 0.0 MiB so far; annotations.tar.gz: not downloaded"),
    ({"images.tar.gz": b"x", ".annotations.tar.gz.extracted": b"ok"},
     "images.tar.gz: downloaded (0.0 MiB), not extracted; annotations.tar.gz: extracted"),
    ({".images.tar.gz.extracted": b"ok", "annotations.tar.gz.part": b"x"},
     "images.tar.gz: extracted; annotations.tar.gz.part: 0.0 MiB so far"),
])
def test_a_half_download_names_the_folder_what_is_there_and_how_to_resume(tmp_path: Path, leftovers: dict,
                                                                          what: str) -> None:
    for name, data in leftovers.items():
        (tmp_path / name).write_bytes(data)
    with pytest.raises(UserError) as caught:
        list_photos(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path}: the dataset is only partly downloaded ({what}")
    assert message.endswith("run `make data` again to resume") and "\n" not in message


def test_a_finished_download_and_a_dataset_extracted_by_hand_are_both_complete(tmp_path: Path) -> None:
    finished = dataset_layout(tmp_path / "made", test=["pug_1"], trainval=["pug_2"])
    by_hand = dataset_layout(tmp_path / "by-hand", test=["pug_1"], trainval=["pug_2"])
    for marker in by_hand.glob(".*.extracted"):
        marker.unlink()
    for root in (finished, by_hand):
        assert len(list_photos(root)) == 12 and held_out_split(root).source == "official"


def test_an_empty_folder_says_how_to_get_photos(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no labelled pet photos found") as caught:
        list_photos(tmp_path)
    assert str(caught.value).endswith(GET_PHOTOS) and "make data" in GET_PHOTOS and "PETS_DIR" in GET_PHOTOS


def test_unlabelled_photos_are_counted_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "IMG_0001.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="1 images have names that do not start with a breed id"):
        list_photos(tmp_path)


def test_a_missing_folder_says_how_to_get_photos(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such folder; run `make data`"):
        list_photos(tmp_path / "nope")
    with pytest.raises(UserError, match="no such folder"):
        image_files(tmp_path / "nope")
