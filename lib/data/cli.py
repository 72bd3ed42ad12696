"""`python -m lib data download` (what `make data` runs): the Oxford-IIIT Pet dataset, resumable and checked."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lib.cli import ProgressBar
from lib.data.download import OFFICIAL_BASE_URL, download_dataset, parse_expect
from lib.data.layout import DEFAULT_DOWNLOAD_DIR

__all__ = ["add_commands", "download_command"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `data download`."""
    data = sub.add_parser("data", help="the Oxford-IIIT Pet dataset")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    d = commands.add_parser("download", help="download and extract images and annotations (resumable, checked)")
    d.add_argument("--dest", required=True, help="folder to download into (DEST/images, DEST/annotations)")
    d.add_argument("--base-url", default=OFFICIAL_BASE_URL, help="where the archives live (default: the official site)")
    d.add_argument("--expect", action="append", default=[], metavar="NAME=SIZE:MD5",
                   help="the size in bytes and MD5 of an archive at --base-url, instead of the published ones")
    d.add_argument("--delete-archives", action="store_true", help="delete the .tar.gz files after extracting")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=download_command)


def download_command(args: argparse.Namespace) -> int:
    archives = parse_expect(args.expect)
    bar = ProgressBar(args.quiet, "B")
    try:
        counts = download_dataset(Path(args.dest), base_url=args.base_url, archives=archives,
                                  progress=bar.update_download, keep_archives=not args.delete_archives)
    finally:
        bar.close()
    found = ("every page and command finds them there" if Path(args.dest).resolve() == DEFAULT_DOWNLOAD_DIR.resolve()
             else f"use them with PETS_DIR={args.dest}")
    print(f"{counts['images']} images in {Path(args.dest) / 'images'}; official split: {counts['trainval']} "
          f"trainval, {counts['test']} test; {found}.")
    print(json.dumps({"dest": str(Path(args.dest).resolve()), **counts}))
    return 0
