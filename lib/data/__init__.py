"""Labelled pet photos: where they are, the one held-out split, and the official dataset's download."""

from lib.data.download import (
    ARCHIVES,
    OFFICIAL_BASE_URL,
    Archive,
    DownloadProgress,
    download_dataset,
    download_file,
    parse_expect,
    safe_extract,
)
from lib.data.layout import (
    DATASET_ARCHIVES,
    DEFAULT_DOWNLOAD_DIR,
    GET_PHOTOS,
    SHARED_PHOTOS_DIR,
    PhotoDir,
    default_data_dir,
    incomplete_download,
    resolve_photo_dir,
)
from lib.data.photos import IMAGE_SUFFIXES, Photo, image_files, list_photos
from lib.data.split import (
    HASH_TEST_PER_BREED,
    HeldOutSplit,
    PhotoSet,
    Split,
    SplitSource,
    held_out_split,
    official_split_dir,
    read_official_split,
    select_photos,
    split_photos,
)

__all__ = [
    "ARCHIVES", "OFFICIAL_BASE_URL", "Archive", "DownloadProgress", "download_dataset", "download_file",
    "parse_expect", "safe_extract",
    "DATASET_ARCHIVES", "DEFAULT_DOWNLOAD_DIR", "GET_PHOTOS", "SHARED_PHOTOS_DIR", "PhotoDir", "default_data_dir",
    "incomplete_download", "resolve_photo_dir",
    "IMAGE_SUFFIXES", "Photo", "image_files", "list_photos",
    "HASH_TEST_PER_BREED", "HeldOutSplit", "PhotoSet", "Split", "SplitSource", "held_out_split",
    "official_split_dir", "read_official_split", "select_photos", "split_photos",
]
