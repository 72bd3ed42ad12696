"""Chat-formatted training samples for the Gemma trainer: photo + the harness prompt -> breed display name.

The photo goes through the same preparation the backend client applies before sending
(`prepare_jpeg`), so the model trains on what it will be asked about when served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lib.breeds import display_name
from lib.client import PROMPT
from lib.data import Photo, held_out_split
from lib.errors import UserError
from lib.images import ImageError, open_image, prepare_jpeg

__all__ = ["load_split", "prompt_messages", "completion_messages", "answer_text", "load_photo", "sft_dataset"]


def load_split(data_dir: Path | str) -> tuple[list[Photo], list[Photo]]:
    """(train, held-out) photos of `data_dir`: the one held-out split the harness and the local trainer use."""
    split = held_out_split(data_dir)
    if not split.train:
        raise UserError(f"{data_dir}: no photos left to train on after holding out the test split")
    return list(split.train), list(split.test)


def answer_text(breed_id: str) -> str:
    """What the model should answer: the breed's display name, exactly what the parser reads best."""
    return display_name(breed_id)


def prompt_messages() -> list[dict[str, Any]]:
    """The user turn: one image, then the same prompt every backend receives."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]


def completion_messages(breed_id: str) -> list[dict[str, Any]]:
    """The assistant turn the loss is computed on."""
    return [{"role": "assistant", "content": [{"type": "text", "text": answer_text(breed_id)}]}]


def load_photo(path: Path, max_side: int) -> Any:
    """The photo as a PIL image, prepared as the backend client would send it; UserError if unreadable."""
    try:
        return open_image(prepare_jpeg(path.read_bytes(), max_side=max_side))
    except ImageError as exc:
        raise UserError(f"{path}: {exc}") from None


def sft_dataset(photos: list[Photo], max_side: int) -> Any:
    """A `datasets.Dataset` of prompt/completion/images rows; images are decoded lazily per batch."""
    from datasets import Dataset

    table = Dataset.from_dict({"path": [str(p.path) for p in photos], "breed": [p.breed for p in photos]})

    def to_rows(batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {
            "images": [[load_photo(Path(path), max_side)] for path in batch["path"]],
            "prompt": [prompt_messages() for _ in batch["path"]],
            "completion": [completion_messages(breed) for breed in batch["breed"]],
        }

    table.set_transform(to_rows)
    return table
