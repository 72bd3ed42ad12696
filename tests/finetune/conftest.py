"""Fixtures for the Gemma trainer: a tiny random Gemma 3 VLM built offline, and labelled photos."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from lib.finetune import GemmaTrainConfig

# Three breeds, four photos each: with one held out per breed, nine train and three are evaluated.
PHOTO_BREEDS = {"Abyssinian": (200, 120, 60), "beagle": (120, 90, 40), "pug": (230, 210, 170)}


@pytest.fixture(scope="session")
def tiny_gemma(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a random two-layer Gemma 3 VLM and its processor (character tokenizer, 32 px images)."""
    from testkit.gemma_random import save_random_gemma3

    return save_random_gemma3(tmp_path_factory.mktemp("tiny-gemma3"), "tiny")


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic JPEGs named like the dataset; each breed has its own colour so there is something to learn."""
    folder = tmp_path_factory.mktemp("photos")
    rng = random.Random(0)
    for breed, colour in PHOTO_BREEDS.items():
        for n in range(1, 6):  # three to train on, two held out (the hash split)
            jitter = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in colour)
            Image.new("RGB", (64, 48), jitter).save(folder / f"{breed}_{n}.jpg")
    return folder


@pytest.fixture
def train_config(tiny_gemma: Path, photo_dir: Path, tmp_path: Path) -> GemmaTrainConfig:
    """A run of a few CPU steps writing to a fresh folder; tests override fields with `model_copy`."""
    return GemmaTrainConfig(
        model_id=str(tiny_gemma),
        data_dir=photo_dir,
        out=str(tmp_path / "out"),
        max_steps=4,
        batch_size=3,
        save_steps=2,
        lora_r=4,
        max_new_tokens=4,
        learning_rate=5e-3,
        device="cpu",
    )


@pytest.fixture(autouse=True)
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach huggingface.co: the hub library reads this flag on every request."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
