"""The promise of the demo, checked end to end through the real server: the general model is good but not a
specialist, the tuned one is a specialist on photos it never saw. Counted here independently of lib.metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.client import classify_many
from lib.data import list_photos, split_photos
from lib.registry import Backend

pytestmark = pytest.mark.slow


async def answers(url: str, model: str, photos) -> list[str]:
    b = Backend(name=model, base_url=url, model=model, family="local")
    out = []
    for photo in photos:
        (p,) = await classify_many([b], photo.path.read_bytes())
        assert p.ok, p.error
        out.append(p.breed)
    return out


async def test_pets_base_knows_at_least_45_percent_of_all_37_breeds(local_server: str, pets: Path) -> None:
    photos = list_photos(pets)
    got = await answers(local_server, "pets-base", photos)
    correct = sum(g == p.breed for g, p in zip(got, photos, strict=True))
    assert correct / len(photos) >= 0.45, f"{correct}/{len(photos)}"
    # ...and it cannot name breeds ImageNet lacks.
    unknown_to_imagenet = {"havanese", "shiba_inu", "Bombay"}
    assert not any(g == p.breed for g, p in zip(got, photos, strict=True) if p.breed in unknown_to_imagenet)


async def test_pets_tuned_is_at_least_85_percent_on_held_out_photos(local_server: str, pets: Path) -> None:
    _, test = split_photos(list_photos(pets))
    got = await answers(local_server, "pets-tuned", test)
    correct = sum(g == p.breed for g, p in zip(got, test, strict=True))
    assert correct / len(test) >= 0.85, f"{correct}/{len(test)}"


def test_shipped_head_card_matches_the_split(pets: Path) -> None:
    root = Path(__file__).resolve().parent.parent / "artifacts" / "pets-tuned"
    metrics = json.loads((root / "metrics.json").read_text())
    train, test = split_photos(list_photos(pets))
    assert set(metrics["test_ids"]) == {p.id for p in test}
    assert set(metrics["train_ids"]) == {p.id for p in train}
    assert metrics["test_accuracy"] >= 0.85
    assert "python -m lib finetune local" in (root / "MODEL_CARD.md").read_text()
