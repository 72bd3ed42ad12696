"""`python -m lib finetune gemma` end to end: outputs, the serve command, and an adapter that loads."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from lib.cli import main


@pytest.fixture(scope="module")
def finished(tiny_gemma: Path, photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("run") / "out"
    argv = [
        "finetune", "gemma", "--model-id", str(tiny_gemma), "--data", str(photo_dir), "--out", str(out),
        "--max-steps", "3", "--save-steps", "2", "--batch-size", "3", "--lora-r", "4", "--learning-rate", "5e-3",
        "--merge", "--device", "cpu", "--adapter-name", "pets-gemma-test",
    ]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        assert main(argv) == 0
    return out, json.loads(stdout.getvalue().strip().splitlines()[-1])


def test_run_writes_adapter_merged_metrics_card_and_serve_command(finished):
    out, summary = finished
    assert summary["steps"] == 3 and summary["adapter"] == str(out / "adapter")
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "merged" / "config.json").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["before"]["n_photos"] == metrics["after"]["n_photos"] == 6
    assert [step for step, _ in metrics["loss_curve"]] == [1, 2, 3]
    assert metrics["train_samples_per_s"] > 0 and metrics["peak_gpu_memory_gib"] is None
    command = (out / "serve_command.txt").read_text().strip()
    assert command == summary["serve_command"]
    assert f"--lora-modules pets-gemma-test={out / 'adapter'}" in command and "--max-lora-rank 8" in command
    card = (out / "MODEL_CARD.md").read_text()
    assert command in card and "| tuned |" in card
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2", "step-3"]


# peft reads `is_gradient_checkpointing`, which transformers 5.2x deprecates.
@pytest.mark.filterwarnings("ignore:.*is deprecated and will be removed in v6:FutureWarning")
def test_adapter_reloads_and_changes_the_output(finished, tiny_gemma: Path, photo_dir: Path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from lib.finetune import load_base, load_photo, prompt_messages

    out, _ = finished
    base, processor = load_base(str(tiny_gemma))
    prompt = processor.apply_chat_template(prompt_messages(), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[prompt], images=[[load_photo(photo_dir / "pug_1.jpg", 896)]], return_tensors="pt",
                       add_special_tokens=False)
    with torch.no_grad():
        plain = base(**inputs).logits
        tuned = PeftModel.from_pretrained(base, str(out / "adapter")).eval()(**inputs).logits
        merged = AutoModelForImageTextToText.from_pretrained(out / "merged").eval()(**inputs).logits
    assert (tuned - plain).abs().max() > 1e-3
    torch.testing.assert_close(merged, tuned, atol=1e-4, rtol=1e-4)


def test_cli_bad_model_id_exits_2_with_a_hint(photo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    rc = main(["finetune", "gemma", "--model-id", "google/no-such-gemma", "--data", str(photo_dir),
               "--out", str(tmp_path / "out"), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "HF_TOKEN" in err and "Traceback" not in err
