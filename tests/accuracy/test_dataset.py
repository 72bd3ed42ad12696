"""The dataset download (`make data`), against a loopback archive server holding a mini-dataset of real photos:
Range resume after a dropped connection, size and MD5 checks, safe extraction, a half download named plainly,
and the downloaded layout read by the same functions every page and command uses."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Iterator

import pytest

from lib.data import (
    ARCHIVES,
    DATASET_ARCHIVES,
    Archive,
    download_dataset,
    download_file,
    held_out_split,
    list_photos,
    parse_expect,
    read_official_split,
    safe_extract,
    select_photos,
    split_photos,
)
from lib.errors import UserError
from testkit.dataset_server import ArchiveServer, MiniDataset, build_mini_dataset, official_line, tar_gz

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mini(pets: Path) -> MiniDataset:
    """Two breeds, three real photos each: one of each breed in the official test list."""
    return build_mini_dataset(pets, breeds=("pug", "Bengal"), per_breed=3)


@pytest.fixture()
def dataset(mini: MiniDataset) -> Iterator[tuple[ArchiveServer, tuple[Archive, ...]]]:
    """The mini-dataset on a loopback server that drops the first connection of each archive half-way."""
    with ArchiveServer(mini.archives, cut_first=DATASET_ARCHIVES) as server:
        yield server, mini.described()


def test_official_lines_follow_the_dataset_format() -> None:
    assert official_line("Abyssinian_100", "Abyssinian") == "Abyssinian_100 1 1 1"
    assert official_line("pug_3", "pug") == "pug_3 26 2 18"
    assert official_line("Bengal_2", "Bengal") == "Bengal_2 6 1 2"
    assert official_line("yorkshire_terrier_9", "yorkshire_terrier") == "yorkshire_terrier_9 37 2 25"


def test_a_dropped_download_resumes_with_range_and_extracts_the_official_split(tmp_path: Path, dataset,
                                                                               mini: MiniDataset) -> None:
    server, archives = dataset
    seen: list[int] = []
    counts = download_dataset(tmp_path / "pets", base_url=server.url, archives=archives,
                              progress=lambda p: seen.append(p.done_bytes))
    assert counts == {"images": 6, "trainval": 4, "test": 2}
    # First GET had no Range and was cut; the retry asked for exactly the missing bytes.
    size = archives[0].size_bytes
    assert size is not None and server.ranges("images.tar.gz") == [None, f"bytes={size // 2}-"]
    assert seen[-1] == archives[1].size_bytes and not list((tmp_path / "pets").glob("*.part"))
    assert read_official_split(tmp_path / "pets") == {**dict.fromkeys(mini.trainval, "trainval"),
                                                      **dict.fromkeys(mini.test, "test")}
    # Running it again does nothing: archives are verified and already extracted.
    before = len(server.requests)
    download_dataset(tmp_path / "pets", base_url=server.url, archives=archives)
    assert len(server.requests) == before


def test_the_downloaded_layout_is_read_like_a_flat_folder_and_holds_out_the_official_test_list(
        tmp_path: Path, dataset, mini: MiniDataset) -> None:
    server, archives = dataset
    download_dataset(tmp_path / "pets", base_url=server.url, archives=archives)
    photos = list_photos(tmp_path / "pets")
    assert [p.path.parent for p in photos] == [tmp_path / "pets" / "images"] * 6
    held = held_out_split(tmp_path / "pets")
    assert held.source == "official"
    assert sorted(p.id for p in held.test) == sorted(mini.test)
    assert sorted(p.id for p in held.train) == sorted(mini.trainval)
    assert sorted(p.id for p in split_photos(photos)[1]) != sorted(mini.test)  # so the lists, not the hash, decided
    assert {p.id for p in select_photos(tmp_path / "pets", "test").photos} == set(mini.test)


def test_a_half_download_is_named_with_what_is_there_and_how_to_resume(tmp_path: Path, mini: MiniDataset) -> None:
    dest = tmp_path / "pets"
    with ArchiveServer(mini.archives, cut_first={"images.tar.gz"}, down_after_cut=True) as server, \
            pytest.raises(UserError, match="HTTP 503"):
        download_dataset(dest, base_url=server.url, archives=mini.described())
    part = dest / "images.tar.gz.part"
    assert 0 < part.stat().st_size < len(mini.archives["images.tar.gz"])
    for reader in (list_photos, held_out_split, select_photos):
        with pytest.raises(UserError) as caught:
            reader(dest)
        message = str(caught.value)
        assert message.startswith(f"{dest}: the dataset is only partly downloaded")
        assert "images.tar.gz.part: " in message and "annotations.tar.gz: not downloaded" in message
        assert "no images/ yet" in message and message.endswith("run `make data` again to resume")
        assert "\n" not in message


def test_an_archive_downloaded_but_not_extracted_is_a_half_download(tmp_path: Path, mini: MiniDataset) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "pug_1.jpg").write_bytes(b"half extracted")
    (tmp_path / "images.tar.gz").write_bytes(mini.archives["images.tar.gz"])
    with pytest.raises(UserError, match=r"images.tar.gz: downloaded \(.* MiB\), not extracted"):
        list_photos(tmp_path)


def test_expected_sizes_and_md5s_can_be_given_for_another_address(mini: MiniDataset) -> None:
    archives = parse_expect(mini.expect.split())
    assert archives == mini.described()
    assert parse_expect([]) == ARCHIVES
    with pytest.raises(UserError, match="'notes.tar.gz' is not one of the archives"):
        parse_expect(["notes.tar.gz=1:" + "0" * 32])
    with pytest.raises(UserError, match="write NAME=SIZE:MD5"):
        parse_expect(["images.tar.gz=12"])


def test_a_file_whose_md5_does_not_match_is_refused_and_deleted(tmp_path: Path, dataset) -> None:
    server, (images, _) = dataset
    wrong = Archive(images.name, images.size_bytes, "0" * 32)
    with pytest.raises(UserError, match="MD5 .* does not match the published 0{32}"):
        download_file(f"{server.url}/images.tar.gz", tmp_path / "images.tar.gz", wrong)
    assert not (tmp_path / "images.tar.gz").exists() and not (tmp_path / "images.tar.gz.part").exists()


def test_a_wrong_size_is_refused(tmp_path: Path, dataset) -> None:
    server, (images, _) = dataset
    server.cut_first.clear()
    assert images.size_bytes is not None
    with pytest.raises(UserError, match="bytes, expected"):
        download_file(f"{server.url}/images.tar.gz", tmp_path / "images.tar.gz",
                      Archive(images.name, images.size_bytes + 10, None))


def test_a_missing_file_is_a_clear_error(tmp_path: Path, dataset) -> None:
    server, _ = dataset
    with pytest.raises(UserError, match="HTTP 404"):
        download_file(f"{server.url}/nope.tar.gz", tmp_path / "nope.tar.gz", Archive("nope.tar.gz", None, None))


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "images/../../evil.txt"])
def test_extraction_refuses_paths_outside_the_destination(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(tar_gz({member: b"owned"}))
    with pytest.raises(UserError, match="would land outside"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_extraction_refuses_links(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("images/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    (tmp_path / "bad.tar.gz").write_bytes(buf.getvalue())
    with pytest.raises(UserError, match="link or device"):
        safe_extract(tmp_path / "bad.tar.gz", tmp_path / "out")


def test_the_published_archives_are_described() -> None:
    assert tuple(a.name for a in ARCHIVES) == DATASET_ARCHIVES == ("images.tar.gz", "annotations.tar.gz")
    assert ARCHIVES[0].md5 == "5c4f3ee8e5d25df40f4fd59a7f44e54c" and ARCHIVES[0].size_bytes == 791_918_971


def make_data(dest: Path, server: ArchiveServer, mini: MiniDataset) -> subprocess.CompletedProcess:
    """The real `make data`, with VENV at this interpreter's venv and its install step taken as done."""
    venv = Path(sys.prefix)
    return subprocess.run(
        ["make", "--no-print-directory", "-o", f"{venv}/.run-deps", "-o", f"{venv}/bin/python", "data",
         f"VENV={venv}", f"DATA_DIR={dest}", f"DATA_BASE_URL={server.url}", f"DATA_EXPECT={mini.expect}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "PETS_DIR": ""},
    )


@pytest.mark.slow
def test_make_data_downloads_resumes_after_a_cut_and_every_reader_finds_the_photos(tmp_path: Path,
                                                                                     pets: Path) -> None:
    mini = build_mini_dataset(pets)  # all 37 breeds, 3 real photos each
    dest = tmp_path / "pets"
    with ArchiveServer(mini.archives, cut_first={"images.tar.gz"}, down_after_cut=True) as server:
        first = make_data(dest, server, mini)
        assert first.returncode != 0 and "HTTP 503" in first.stderr and "Traceback" not in first.stderr
        kept = (dest / "images.tar.gz.part").stat().st_size
        assert 0 < kept < len(mini.archives["images.tar.gz"])
        # The half download is named plainly by the CLI, which says how to finish it.
        out = subprocess.run([sys.executable, "-m", "lib", "eval", "--backend", "pets-base", "--data", str(dest),
                              "--out", str(tmp_path / "results")], cwd=REPO, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 2 and "Traceback" not in out.stderr
        assert "the dataset is only partly downloaded" in out.stderr and "run `make data` again" in out.stderr

        server.down = server.down_after_cut = False  # back up, and this time a dropped line is retried at once
        server.cut_first.add("annotations.tar.gz")
        second = make_data(dest, server, mini)
        assert second.returncode == 0, second.stderr
        assert server.ranges("images.tar.gz")[-1] == f"bytes={kept}-"  # resumed, not started over
        annotations = server.ranges("annotations.tar.gz")
        assert annotations[0] is None and annotations[1] is not None and annotations[1].startswith("bytes=")
    assert '"images": 111' in second.stdout and '"test": 37' in second.stdout
    assert not list(dest.glob("*.part"))
    photos = list_photos(dest)
    assert len(photos) == 111 and {p.path.parent for p in photos} == {dest / "images"}
    held = held_out_split(dest)
    assert held.source == "official" and len(held.test) == 37 and len(held.train) == 74
    assert {p.id for p in held.test} == set(mini.test)
