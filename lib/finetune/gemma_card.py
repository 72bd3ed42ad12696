"""What a finished Gemma run leaves besides weights: the vLLM serve command and the model card."""

from __future__ import annotations

import shlex
from typing import Any

__all__ = ["VLLM_LORA_RANKS", "vllm_lora_rank", "served_path", "serve_command", "model_card"]

# vLLM accepts only these values for --max-lora-rank.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def vllm_lora_rank(r: int) -> int:
    """The smallest `--max-lora-rank` vLLM accepts that fits a rank-`r` adapter."""
    return next((rank for rank in VLLM_LORA_RANKS if rank >= r), VLLM_LORA_RANKS[-1])


def served_path(adapter_url: str, mount_root: str = "/gcs") -> str:
    """Where vLLM sees the adapter: a `gs://bucket/p` folder is read through a Cloud Storage volume
    mounted at `<mount_root>/<bucket>`; a local folder is used as is."""
    if adapter_url.startswith("gs://"):
        return f"{mount_root}/{adapter_url.removeprefix('gs://')}"
    return adapter_url


def serve_command(base_model: str, adapter_url: str, adapter_name: str, lora_r: int) -> str:
    """The exact `vllm serve` command that serves the base model with this adapter as `adapter_name`."""
    args = [
        "vllm", "serve", base_model,
        "--enable-lora",
        "--lora-modules", f"{adapter_name}={served_path(adapter_url)}",
        "--max-lora-rank", str(vllm_lora_rank(lora_r)),
        "--limit-mm-per-prompt", '{"image": 1}',
        "--max-model-len", "4096",
    ]
    return shlex.join(args)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def model_card(metrics: dict[str, Any], command: str) -> str:
    """MODEL_CARD.md for a finished run, from its metrics.json content."""
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    lora = metrics["lora"]
    mount_note = (
        "\nThe adapter lives in a bucket: mount it as a Cloud Storage volume at `/gcs/<bucket>` "
        "on the vLLM service (the path above assumes that).\n"
        if metrics["adapter"].startswith("gs://") else ""
    )
    merged = "`merged/` (full weights), " if metrics.get("merged") else ""
    return f"""# {metrics['adapter_name']}: Oxford-IIIT Pet breeds, LoRA on {metrics['base_model']}

A LoRA adapter that teaches `{metrics['base_model']}` to answer the project's breed question with one
of the 37 Oxford-IIIT Pet breed names.

## Training
- Data: `{metrics['data_dir']}`: {metrics['n_train']} training photos, {metrics['n_held_out']} held out
  (the project's deterministic per-breed split, never trained on).
- Sample: the photo and the same prompt every backend receives; the answer is the breed's display
  name; the loss is computed on the answer tokens only.
- LoRA: r={lora['r']}, alpha={lora['alpha']}, dropout={lora['dropout']}, on the language model's
  attention and MLP projections (the vision tower is frozen){', 4-bit QLoRA base' if lora['qlora'] else ''}.
- Steps: {metrics['steps']} (batch {metrics['batch_size']} x {metrics['grad_accum']} accumulation,
  learning rate {metrics['learning_rate']}), on {metrics['device']} in {metrics['dtype']}.
- Throughput: {metrics['train_samples_per_s']:.2f} samples/s; wall time {metrics['wall_s']:.0f} s.

## Held-out accuracy (same prompt and parser as the evaluation harness)
| | accuracy | unknown rate | photos |
|---|---|---|---|
| base | {_pct(before.get('accuracy'))} | {_pct(before.get('unknown_rate'))} | {before.get('n_photos', 'n/a')} |
| tuned | {_pct(after.get('accuracy'))} | {_pct(after.get('unknown_rate'))} | {after.get('n_photos', 'n/a')} |

## Serve with vLLM
```
{command}
```
Ask for model `{metrics['adapter_name']}` on `/v1/chat/completions`; the base model stays available.
{mount_note}
## Files
`adapter/` (peft), {merged}`metrics.json`, this card, `serve_command.txt`.

## Limitations
The held-out set is small (a few photos per breed); read the accuracy as a smoke test, and use the
Accuracy page's full evaluation for decisions.
"""
