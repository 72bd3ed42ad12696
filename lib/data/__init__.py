"""Labelled pet photos: folders, the one held-out split, and the official dataset's download."""

from lib.data.download import (
    ARCHIVES,
    OFFICIAL_BASE_URL,
    Archive,
    DownloadProgress,
    download_dataset,
    download_file,
    safe_extract,
)
from lib.data.photos import IMAGE_SUFFIXES, Photo, list_photos
from lib.data.split import (
    PhotoSet,
    Split,
    default_data_dir,
    official_split_dir,
    read_official_split,
    select_photos,
    select_split,
    split_photos,
)

__all__ = [
    "ARCHIVES", "OFFICIAL_BASE_URL", "Archive", "DownloadProgress", "download_dataset", "download_file",
    "safe_extract", "IMAGE_SUFFIXES", "Photo", "list_photos", "PhotoSet", "Split", "default_data_dir",
    "official_split_dir", "read_official_split", "select_photos", "select_split", "split_photos",
]
