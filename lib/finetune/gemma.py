"""LoRA fine-tuning of Gemma 3 / Gemma 4 vision-language models on pet photos (transformers + peft + TRL).

`train_gemma(config)` evaluates the base model on the held-out split, trains a LoRA adapter on the
language model with loss on the answer tokens only (TRL's `SFTTrainer` with prompt/completion
samples), evaluates again and writes `adapter/`, optionally `merged/`, `metrics.json`,
`MODEL_CARD.md` and `serve_command.txt` to the output folder. Checkpoints go to
`<out>/checkpoints/step-N` (see `gemma_ckpt`); a retried Cloud Run task resumes from the newest.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import resource
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from lib.errors import UserError
from lib.finetune.gemma_card import model_card, serve_command
from lib.finetune.gemma_ckpt import (
    CheckpointMeta,
    check_compatible,
    output_store,
    prune_checkpoints,
    publish_checkpoint,
    read_meta,
    scan_checkpoints,
)
from lib.finetune.gemma_data import load_split, sft_dataset
from lib.finetune.gemma_eval import EvalSummary, evaluate_held_out
from lib.store import Store

__all__ = [
    "GemmaTrainConfig",
    "GemmaProgress",
    "GemmaTrainResult",
    "LORA_TARGETS",
    "train_gemma",
    "make_trainer",
    "result_summary",
    "load_base",
    "config_sha256",
]

# The language model's attention and MLP projections; the vision tower (which has q_proj too) stays frozen.
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


class GemmaTrainConfig(BaseModel):
    """Everything a run needs; the CLI flags map one to one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    data_dir: Path
    out: str
    max_steps: int = Field(default=-1, ge=-1, description="-1: train for `epochs`")
    epochs: float = Field(default=1.0, gt=0)
    lora_r: int = Field(default=16, ge=1, le=512)
    lora_alpha: int | None = Field(default=None, ge=1, description="default 2 * r")
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    qlora: bool = False
    merge: bool = False
    batch_size: int = Field(default=4, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=2e-4, gt=0)
    save_steps: int = Field(default=50, ge=1)
    keep_checkpoints: int = Field(default=2, ge=1)
    eval_limit: int | None = Field(default=None, ge=0, description="at most this many held-out photos")
    eval_batch_size: int = Field(default=8, ge=1)
    eval_before: bool = True
    max_new_tokens: int = Field(default=24, ge=1)
    max_image_side: int = Field(default=896, ge=64)
    adapter_name: str = Field(default="pets-gemma", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    resume: bool | None = Field(default=None, description="None: resume when task_attempt > 0")
    task_attempt: int = Field(default=0, ge=0, description="CLOUD_RUN_TASK_ATTEMPT")
    activation_checkpointing: bool | None = Field(default=None, description="None: on for CUDA")
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda)$")
    seed: int = 42


@dataclass(frozen=True)
class GemmaProgress:
    """A progress report: `phase` is loading|eval-before|train|eval-after|save|done."""

    phase: str
    step: int = 0
    max_steps: int = 0
    loss: float | None = None
    message: str = ""


@dataclass(frozen=True)
class GemmaTrainResult:
    """What a run produced: where, how far, and how well."""

    out: str
    adapter: str
    merged: str | None
    steps: int
    resumed_from_step: int | None
    torn_checkpoints: tuple[str, ...]
    before: EvalSummary | None
    after: EvalSummary
    train_samples_per_s: float
    wall_s: float
    peak_gpu_memory_gib: float | None
    peak_rss_gib: float
    loss_curve: tuple[tuple[int, float], ...] = field(default_factory=tuple)
    serve_command: str = ""


Progress = Callable[[GemmaProgress], None]


@contextlib.contextmanager
def _quiet_deprecations() -> Iterator[None]:
    # peft and TRL read `is_gradient_checkpointing`, which transformers 5.2x deprecates; not ours to fix.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*is deprecated and will be removed in v6.*",
                                category=FutureWarning)
        yield


def _looks_local(model_id: str) -> bool:
    return model_id.startswith(("/", "./", "../", "~")) or Path(model_id).expanduser().exists()


def _load(loader: Any, model_id: str, **kwargs: Any) -> Any:
    if _looks_local(model_id) and not Path(model_id).expanduser().is_dir():
        raise UserError(f"--model-id {model_id}: no such folder (a local model is a folder holding config.json)")
    try:
        source = str(Path(model_id).expanduser()) if _looks_local(model_id) else model_id
        return loader.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(
            f"cannot load {model_id!r}: {first} -- check the id, accept the model's licence on huggingface.co "
            "and set HF_TOKEN (Gemma is gated), or pass a local folder with the downloaded model"
        ) from None


def config_sha256(config: Any) -> str:
    """A fingerprint of the model architecture, independent of dtype, quantisation and load path."""
    volatile = {"_name_or_path", "transformers_version", "dtype", "torch_dtype", "quantization_config", "use_cache"}

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in sorted(value.items()) if k not in volatile}
        return value

    return hashlib.sha256(json.dumps(clean(config.to_dict()), sort_keys=True, default=str).encode()).hexdigest()


def _device(requested: str, qlora: bool) -> str:
    import torch

    cuda = torch.cuda.is_available()
    if requested == "cuda" and not cuda:
        raise UserError("--device cuda: no CUDA GPU is visible to torch on this machine")
    device = "cuda" if requested == "auto" and cuda else ("cpu" if requested == "auto" else requested)
    if qlora and device != "cuda":
        raise UserError("--qlora needs a CUDA GPU (bitsandbytes 4-bit); drop --qlora to train plain LoRA here")
    if qlora and importlib.util.find_spec("bitsandbytes") is None:
        raise UserError("--qlora needs bitsandbytes: pip install -r requirements-train.txt")
    return device


def load_base(model_id: str, *, device: str = "cpu", qlora: bool = False) -> tuple[Any, Any]:
    """(model, processor) through the Auto classes (Gemma 3 and 4 alike); bf16 on CUDA, 4-bit with QLoRA."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if device == "cuda" else torch.float32}
    if device == "cuda":
        kwargs["device_map"] = {"": 0}
    if qlora:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
            llm_int8_skip_modules=["vision_tower", "multi_modal_projector", "embed_vision", "lm_head"],
        )
    processor = _load(AutoProcessor, model_id)
    model = _load(AutoModelForImageTextToText, model_id, **kwargs)
    return model, processor


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _eval_dict(summary: EvalSummary | None) -> dict[str, Any] | None:
    return None if summary is None else asdict(summary)


def _eval_from_dict(raw: dict[str, Any]) -> EvalSummary:
    from lib.finetune.gemma_eval import HeldOutAnswer

    extra = {k: raw[k] for k in ("macro_f1", "accuracy_low", "accuracy_high") if k in raw}
    return EvalSummary(raw["n_photos"], raw["accuracy"], raw["unknown_rate"],
                       tuple(HeldOutAnswer(**a) for a in raw["answers"]), **extra)


def _callbacks(
    cfg: GemmaTrainConfig, out: Store, staging: Path, meta_base: CheckpointMeta, report: Progress,
) -> list[Any]:
    from transformers import TrainerCallback

    class Checkpoints(TrainerCallback):
        """Moves each checkpoint the Trainer writes into the output folder, marker last, then prunes."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            local = staging / f"checkpoint-{state.global_step}"
            meta = CheckpointMeta(meta_base.model_id, meta_base.config_sha256, state.global_step, meta_base.lora_r)
            saved = publish_checkpoint(out, local, meta)
            if local.exists():
                shutil.rmtree(local)
            prune_checkpoints(out, cfg.keep_checkpoints)
            report(GemmaProgress("train", state.global_step, state.max_steps, None, f"saved {saved.name}"))

    class Report(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                report(GemmaProgress("train", state.global_step, state.max_steps, float(logs["loss"])))

    return [Checkpoints(), Report()]


def train_gemma(cfg: GemmaTrainConfig, progress: Progress | None = None) -> GemmaTrainResult:
    """Run one training job end to end (see the module docstring); raises UserError on bad input."""
    report: Progress = progress or (lambda _p: None)
    started = time.perf_counter()
    out = output_store(cfg.out)
    out.check_writable()
    train_photos, held_out = load_split(cfg.data_dir)
    if cfg.eval_limit is not None:
        held_out = held_out[: cfg.eval_limit]
    device = _device(cfg.device, cfg.qlora)

    complete, torn = scan_checkpoints(out)
    if torn:
        report(GemmaProgress("loading", message=f"ignoring torn checkpoints (no {out.url('checkpoints')}/*/COMPLETE): "
                                                f"{', '.join(torn)}"))
    resume = cfg.resume if cfg.resume is not None else cfg.task_attempt > 0
    if complete and not resume:
        raise UserError(
            f"{out.url('checkpoints')} already holds {complete[-1].name} from an earlier run; pass --resume to "
            "continue it or choose a new --out folder"
        )

    report(GemmaProgress("loading", message=f"loading {cfg.model_id} on {device}"))
    from transformers import AutoConfig

    fingerprint = config_sha256(_load(AutoConfig, cfg.model_id))
    resume_from = complete[-1] if resume and complete else None
    if resume_from is not None:
        check_compatible(read_meta(out, resume_from), cfg.model_id, fingerprint,
                         out.url("checkpoints", resume_from.name))

    import torch

    with _quiet_deprecations():
        model, processor = load_base(cfg.model_id, device=device, qlora=cfg.qlora)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()

    before: EvalSummary | None = None
    if cfg.eval_before and held_out:
        if resume_from is not None and out.exists("eval_before.json"):
            before = _eval_from_dict(json.loads(out.read_text("eval_before.json")))  # a retry need not redo it
        else:
            report(GemmaProgress("eval-before", message=f"evaluating the base model on {len(held_out)} photos"))
            before = _evaluate(cfg, model, processor, held_out)
            out.write_text(json.dumps(_eval_dict(before), indent=2), "eval_before.json")

    staging = Path(out.path(".staging")) if not out.remote else Path(tempfile.mkdtemp(prefix="gemma-train-"))
    if staging.exists():
        shutil.rmtree(staging)  # leftovers of a killed attempt; complete checkpoints live elsewhere
    staging.mkdir(parents=True)
    try:
        result = _train_and_save(cfg, out, staging, model, processor, train_photos, held_out, before, device,
                                 fingerprint, resume_from.step if resume_from else None, report, torn, started)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report(GemmaProgress("done", result.steps, result.steps, None, f"adapter at {result.adapter}"))
    return result


def make_trainer(
    cfg: GemmaTrainConfig, model: Any, processor: Any, train_photos: list[Any], staging: Path, device: str,
    callbacks: list[Any] | None = None,
) -> Any:
    """The TRL `SFTTrainer`: LoRA on the language model, prompt/completion samples, loss on the answer only."""
    from peft import LoraConfig
    from transformers import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    alpha = cfg.lora_alpha or 2 * cfg.lora_r
    lora = LoraConfig(
        r=cfg.lora_r, lora_alpha=alpha, lora_dropout=cfg.lora_dropout, target_modules=LORA_TARGETS,
        task_type="CAUSAL_LM",
    )
    cuda = device == "cuda"
    checkpointing = cfg.activation_checkpointing if cfg.activation_checkpointing is not None else cuda
    args = SFTConfig(
        output_dir=str(staging),
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        logging_steps=1,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=None,
        report_to="none",
        disable_tqdm=True,
        completion_only_loss=True,  # labels are -100 everywhere but the answer (and its end-of-turn)
        remove_unused_columns=False,
        max_length=None,  # never truncate: the image tokens sit inside the prompt
        activation_checkpointing=checkpointing,
        gradient_checkpointing=checkpointing,  # its deprecated alias: TRL defaults it to True, so say the same
        bf16=cuda,
        use_cpu=not cuda,
        dataloader_num_workers=2 if cuda else 0,
        seed=cfg.seed,
    )
    with _quiet_deprecations():
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=sft_dataset(train_photos, cfg.max_image_side),
            processing_class=processor,
            peft_config=lora,
            callbacks=callbacks,
        )
    trainer.remove_callback(PrinterCallback)  # progress goes through callbacks; stdout stays for the JSON line
    return trainer


def _evaluate(cfg: GemmaTrainConfig, model: Any, processor: Any, photos: list[Any]) -> EvalSummary:
    return evaluate_held_out(model, processor, photos, max_side=cfg.max_image_side,
                             max_new_tokens=cfg.max_new_tokens, batch_size=cfg.eval_batch_size)


def _train_and_save(
    cfg: GemmaTrainConfig, out: Store, staging: Path, model: Any, processor: Any, train_photos: list[Any],
    held_out: list[Any], before: EvalSummary | None, device: str, fingerprint: str, resume_step: int | None,
    report: Progress, torn: list[str], started: float,
) -> GemmaTrainResult:
    import torch

    cuda = device == "cuda"
    meta = CheckpointMeta(cfg.model_id, fingerprint, 0, cfg.lora_r)
    with _quiet_deprecations():
        trainer = make_trainer(
            cfg, model, processor, train_photos, staging, device, _callbacks(cfg, out, staging, meta, report)
        )
        resume_dir = None
        if resume_step is not None:
            resume_dir = out.get_dir(staging / "resume", "checkpoints", f"step-{resume_step}")
            report(GemmaProgress("train", resume_step, 0, None, f"resuming from step-{resume_step}"))
        train_started = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(resume_dir) if resume_dir else None)
        train_s = time.perf_counter() - train_started
    steps = trainer.state.global_step
    samples = (steps - (resume_step or 0)) * cfg.batch_size * cfg.grad_accum
    peak_gpu = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    curve = [(int(e["step"]), float(e["loss"])) for e in trainer.state.log_history if "loss" in e]

    peft_model = trainer.model
    after = before
    if held_out:
        report(GemmaProgress("eval-after", steps, steps, None, f"evaluating the tuned model on {len(held_out)} photos"))
        after = _evaluate(cfg, peft_model, processor, held_out)

    report(GemmaProgress("save", steps, steps, None, "writing adapter, metrics and model card"))
    local_adapter = staging / "adapter"
    peft_model.save_pretrained(local_adapter)
    processor.save_pretrained(local_adapter)
    out.put_dir(local_adapter, "adapter")
    merged_url = None
    if cfg.merge:
        merged_url = _save_merged(cfg, out, staging, peft_model, processor, local_adapter, device)

    command = serve_command(cfg.model_id, out.url("adapter"), cfg.adapter_name, cfg.lora_r)
    empty = EvalSummary(0, 0.0, 0.0, ())
    metrics = {
        "base_model": cfg.model_id,
        "config_sha256": fingerprint,
        "adapter_name": cfg.adapter_name,
        "adapter": out.url("adapter"),
        "merged": merged_url,
        "data_dir": str(cfg.data_dir),
        "n_train": len(train_photos),
        "n_held_out": len(held_out),
        "steps": steps,
        "resumed_from_step": resume_step,
        "torn_checkpoints_ignored": torn,
        "batch_size": cfg.batch_size,
        "grad_accum": cfg.grad_accum,
        "learning_rate": cfg.learning_rate,
        "lora": {"r": cfg.lora_r, "alpha": cfg.lora_alpha or 2 * cfg.lora_r, "dropout": cfg.lora_dropout,
                 "qlora": cfg.qlora, "targets": LORA_TARGETS},
        "device": device,
        "dtype": "bfloat16" if cuda else "float32",
        "before": _eval_dict(before),
        "after": _eval_dict(after or empty),
        "loss_curve": curve,
        "train_samples_per_s": samples / train_s if train_s > 0 else 0.0,
        "train_s": train_s,
        "wall_s": time.perf_counter() - started,
        "peak_gpu_memory_gib": peak_gpu,
        "peak_rss_gib": _peak_rss_gib(),
        "serve_command": command,
    }
    out.write_text(json.dumps(metrics, indent=2), "metrics.json")
    out.write_text(model_card(metrics, command), "MODEL_CARD.md")
    out.write_text(command + "\n", "serve_command.txt")
    return GemmaTrainResult(
        out=out.uri, adapter=out.url("adapter"), merged=merged_url, steps=steps, resumed_from_step=resume_step,
        torn_checkpoints=tuple(torn), before=before, after=after or empty,
        train_samples_per_s=metrics["train_samples_per_s"], wall_s=metrics["wall_s"], peak_gpu_memory_gib=peak_gpu,
        peak_rss_gib=metrics["peak_rss_gib"], loss_curve=tuple(curve), serve_command=command,
    )


def _save_merged(
    cfg: GemmaTrainConfig, out: Store, staging: Path, peft_model: Any, processor: Any, adapter: Path, device: str
) -> str:
    """Full weights with the adapter folded in; a 4-bit base is reloaded in bf16 first, so nothing is lost."""
    if cfg.qlora:
        from peft import PeftModel

        base, _ = load_base(cfg.model_id, device=device, qlora=False)
        merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    else:
        merged = peft_model.merge_and_unload()
    local = staging / "merged"
    merged.save_pretrained(local)
    processor.save_pretrained(local)
    out.put_dir(local, "merged")
    return out.url("merged")


def result_summary(result: GemmaTrainResult) -> dict[str, Any]:
    """The CLI's one-line JSON: figures only, no per-photo answers."""
    return {
        "out": result.out,
        "adapter": result.adapter,
        "merged": result.merged,
        "steps": result.steps,
        "resumed_from_step": result.resumed_from_step,
        "torn_checkpoints": list(result.torn_checkpoints),
        "accuracy_before": None if result.before is None else result.before.accuracy,
        "accuracy_after": result.after.accuracy,
        "unknown_rate_after": result.after.unknown_rate,
        "macro_f1_after": result.after.macro_f1,
        "train_samples_per_s": round(result.train_samples_per_s, 3),
        "wall_s": round(result.wall_s, 2),
        "peak_gpu_memory_gib": result.peak_gpu_memory_gib,
        "peak_rss_gib": round(result.peak_rss_gib, 3),
        "serve_command": result.serve_command,
    }

