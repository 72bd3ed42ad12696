"""Held-out evaluation of a Gemma VLM in process: the harness's prompt, the one parser, accuracy.

Greedy decoding with a short answer budget, like the harness's `temperature=0, max_tokens=32`
requests; the raw answer goes through `lib.breeds.parse_breed`, exactly as a served model's would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from lib.breeds import parse_breed
from lib.data import Photo
from lib.finetune.gemma_data import load_photo, prompt_messages

__all__ = ["HeldOutAnswer", "EvalSummary", "evaluate_held_out", "summarize"]


@dataclass(frozen=True)
class HeldOutAnswer:
    """One held-out photo: truth, the model's raw text and what the parser made of it."""

    photo_id: str
    truth: str
    raw: str
    parsed: str


@dataclass(frozen=True)
class EvalSummary:
    """Accuracy and unknown rate over the held-out photos (fractions, 0..1)."""

    n_photos: int
    accuracy: float
    unknown_rate: float
    answers: tuple[HeldOutAnswer, ...]
    macro_f1: float = float("nan")
    accuracy_low: float = float("nan")
    accuracy_high: float = float("nan")


def summarize(answers: list[HeldOutAnswer]) -> EvalSummary:
    """The harness's figures (lib.metrics) over the held-out answers, so before/after match `python -m lib eval`."""
    from lib.accuracy import EvalRecord
    from lib.accuracy import summarize as run_metrics

    if not answers:
        return EvalSummary(0, 0.0, 0.0, ())
    m = run_metrics([EvalRecord(a.photo_id, a.truth, a.parsed, a.raw, 0.0, 1) for a in answers])
    return EvalSummary(m.n, m.accuracy, m.unknown_rate, tuple(answers), m.macro_f1, m.accuracy_low, m.accuracy_high)


def evaluate_held_out(
    model: Any,
    processor: Any,
    photos: list[Photo],
    *,
    max_side: int,
    max_new_tokens: int = 24,
    batch_size: int = 8,
    on_batch: Callable[[int, int], None] | None = None,
) -> EvalSummary:
    """Generate an answer for every photo (greedy), parse it and summarise; `on_batch(done, total)`."""
    import torch

    tokenizer = processor.tokenizer
    prompt = processor.apply_chat_template(prompt_messages(), add_generation_prompt=True, tokenize=False)
    was_training, old_side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"  # generation continues every row from its last real token
    answers: list[HeldOutAnswer] = []
    try:
        for start in range(0, len(photos), batch_size):
            batch = photos[start:start + batch_size]
            images = [[load_photo(p.path, max_side)] for p in batch]
            inputs = processor(
                text=[prompt] * len(batch), images=images, return_tensors="pt", padding=True, add_special_tokens=False
            ).to(model.device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
            with torch.inference_mode():
                out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            texts = tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            for photo, text in zip(batch, texts, strict=True):
                answers.append(HeldOutAnswer(photo.id, photo.breed, text.strip(), parse_breed(text)))
            if on_batch is not None:
                on_batch(len(answers), len(photos))
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return summarize(answers)
