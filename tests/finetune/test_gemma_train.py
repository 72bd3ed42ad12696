"""The Gemma LoRA trainer on a tiny random Gemma 3 VLM on the CPU: masking, learning, adapters, resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lib.breeds import display_name
from lib.errors import UserError
from lib.finetune import (
    MARKER,
    GemmaProgress,
    GemmaTrainConfig,
    load_base,
    load_split,
    make_trainer,
    sft_dataset,
    train_gemma,
)


@pytest.fixture
def trainer_parts(train_config: GemmaTrainConfig, tmp_path: Path):
    model, processor = load_base(train_config.model_id, device="cpu")
    train, _ = load_split(train_config.data_dir)
    trainer = make_trainer(train_config, model, processor, train, tmp_path / "staging", "cpu")
    rows = sft_dataset(train, train_config.max_image_side)
    return trainer, processor, train, rows


def test_labels_mask_everything_but_the_answer(trainer_parts):
    trainer, processor, train, rows = trainer_parts
    picks = [0, 4, 8]  # Abyssinian, beagle, pug: answers of different lengths, so rows are padded
    batch = trainer.data_collator([rows[i] for i in picks])
    tokenizer = processor.tokenizer
    for row, i in enumerate(picks):
        labels = batch["labels"][row]
        kept = batch["input_ids"][row][labels != -100]
        assert tokenizer.decode(kept) == display_name(train[i].breed) + "<end_of_turn>\n"
        assert (labels[labels != -100] == kept).all()  # the answer's labels are its own tokens
        assert (labels[batch["attention_mask"][row] == 0] == -100).all()  # padding never counts
    assert batch["pixel_values"].shape[0] == len(picks)
    assert (batch["labels"][batch["input_ids"] == tokenizer.image_token_id] == -100).all()


def test_lora_goes_on_the_language_model_only(trainer_parts):
    trainer = trainer_parts[0]
    lora_layers = {name.rsplit(".lora_A", 1)[0] for name, _ in trainer.model.named_modules() if ".lora_A" in name}
    assert lora_layers and all(".language_model." in name for name in lora_layers)
    assert not any("vision" in name for name in lora_layers)
    trainable = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(trainer_parts):
    import torch

    trainer, _, _, rows = trainer_parts
    batch = trainer.data_collator([rows[i] for i in range(3)])

    def loss() -> float:
        trainer.model.eval()
        with torch.no_grad():
            return float(trainer.model(**batch).loss)

    before = loss()
    trainer.train()
    assert trainer.state.global_step == 4
    assert loss() < before - 0.05


class Killed(Exception):
    """Stands in for the job being killed."""


def kill_at(step: int):
    def report(p: GemmaProgress) -> None:
        if p.phase == "train" and p.step >= step and p.loss is not None:
            raise Killed(step)

    return report


@pytest.mark.slow
def test_killed_run_resumes_at_the_newest_complete_checkpoint(train_config: GemmaTrainConfig):
    with pytest.raises(Killed):
        train_gemma(train_config, progress=kill_at(3))
    ckpts = Path(train_config.out) / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-2"]
    # A newer save torn by the kill: every file but the marker.
    shutil.copytree(ckpts / "step-2", ckpts / "step-3")
    (ckpts / "step-3" / MARKER).unlink()

    with pytest.raises(UserError, match="pass --resume"):
        train_gemma(train_config)  # first attempt of a new run must not silently continue an old one

    seen: list[GemmaProgress] = []
    result = train_gemma(train_config.model_copy(update={"task_attempt": 1}), progress=seen.append)
    assert result.resumed_from_step == 2
    assert result.torn_checkpoints == ("step-3",)
    assert [p.step for p in seen if p.phase == "train" and p.loss is not None] == [3, 4]
    assert result.steps == 4
    state = json.loads((ckpts / "step-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    # The torn step-3 goes once a newer complete checkpoint exists; the two newest complete ones stay.
    assert sorted(p.name for p in ckpts.iterdir()) == ["step-2", "step-4"]
    metrics = json.loads((Path(train_config.out) / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 2 and metrics["before"]["n_photos"] == 6


def test_checkpoint_of_another_model_is_refused(train_config: GemmaTrainConfig):
    folder = Path(train_config.out) / "checkpoints" / "step-5"
    folder.mkdir(parents=True)
    meta = {"model_id": "google/gemma-3-4b-it", "config_sha256": "0" * 64, "step": 5, "lora_r": 4}
    (folder / "pets_checkpoint.json").write_text(json.dumps(meta))
    (folder / MARKER).write_text("ok\n")
    with pytest.raises(UserError, match="trained from 'google/gemma-3-4b-it'"):
        train_gemma(train_config.model_copy(update={"task_attempt": 2}))
    assert (folder / MARKER).exists()  # refused, not deleted


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_id": "/nonexistent/gemma-3"}, "no such folder"),
        ({"model_id": "google/gemma-3-27b-it-does-not-exist"}, "HF_TOKEN"),
        ({"qlora": True}, "needs a CUDA GPU"),
        ({"data_dir": Path("/")}, "no labelled pet photos"),
        ({"out": "/proc/version/out"}, "not writable"),
    ],
)
def test_bad_input_is_a_clear_user_error(train_config: GemmaTrainConfig, change: dict, message: str):
    with pytest.raises(UserError, match=message):
        train_gemma(train_config.model_copy(update=change))
