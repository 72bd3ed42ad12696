"""`python -m lib finetune ...`: local (CPU head), gemma (LoRA), submit (the Gemma trainer as a Cloud Run Job).

Each handler turns flags into the library's typed options and calls one function; the trainers are
imported when their command runs, so `python -m lib --help` does not load them.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from lib.cloudrun import (
    FinetuneJobOptions,
    add_job_arguments,
    finetune_spec,
    parse_pairs,
    parse_volumes,
    submit_job,
)
from lib.data import default_data_dir
from lib.errors import UserError
from lib.settings import load_settings

if TYPE_CHECKING:
    from lib.finetune.gemma import GemmaProgress

__all__ = ["add_commands", "finetune_job_options"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `finetune` and its subcommands."""
    parser = sub.add_parser("finetune", help="train a tuned model (local head, Gemma LoRA, Cloud Run Job)")
    commands = parser.add_subparsers(dest="finetune_command", required=True, metavar="TRAINER")
    _add_local(commands)
    _add_gemma(commands)
    _add_submit(commands)


# --- finetune local ---------------------------------------------------------------------------------------

def _add_local(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("local", help="train the pets-tuned head on the CPU (seconds)")
    p.add_argument("--data", type=Path, default=None,
                   help="photos: a flat folder or the dataset's layout (default PETS_DIR, data/pets, ../shared/pets)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default artifacts/pets-tuned)")
    p.add_argument("--reg", type=float, default=0.01)
    p.add_argument("--steps", type=int, default=1500)
    p.set_defaults(func=_run_local)


def _run_local(args: argparse.Namespace) -> int:
    from lib.finetune.local import train_local

    settings = load_settings()
    data = args.data or default_data_dir(settings.pets_dir)  # a missing folder says how to get photos
    last = [-1.0]

    def progress(stage: str, done: int, total: int) -> None:
        pct = 100 * done / max(total, 1)
        if pct - last[0] >= 10 or done == total:
            last[0] = pct if done < total else -1.0
            print(f"{stage}: {done}/{total}", flush=True)

    result = train_local(data, args.out or settings.artifacts_dir, reg=args.reg, steps=args.steps, progress=progress)
    print(json.dumps(asdict(result)))
    return 0


# --- finetune gemma ---------------------------------------------------------------------------------------

def _add_gemma(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("gemma", help="LoRA-tune a Gemma 3/4 vision-language model on pet photos")
    p.add_argument("--model-id", required=True, help="Hugging Face id (needs HF_TOKEN for Gemma) or local folder")
    p.add_argument("--data", required=True, type=Path, help="folder of photos named like Abyssinian_101.jpg")
    p.add_argument("--out", required=True, help="output folder: local path, Cloud Storage mount or gs://bucket/prefix")
    p.add_argument("--max-steps", type=int, default=-1, help="stop after N optimizer steps (default: --epochs)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=None, help="default 2 x r")
    p.add_argument("--qlora", action="store_true", help="4-bit base with bitsandbytes (CUDA only)")
    p.add_argument("--merge", action="store_true", help="also write merged full weights to <out>/merged")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--learning-rate", type=float, default=2e-4)
    p.add_argument("--save-steps", type=int, default=50)
    p.add_argument("--eval-limit", type=int, default=None, help="evaluate at most N held-out photos")
    p.add_argument("--no-eval-before", action="store_true", help="skip the base model's evaluation")
    p.add_argument("--adapter-name", default="pets-gemma", help="model name of the adapter in vLLM")
    p.add_argument("--resume", action="store_true", help="continue from the newest complete checkpoint in --out")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.set_defaults(func=_run_gemma)


def _print_gemma_progress(p: GemmaProgress) -> None:
    loss = f" loss={p.loss:.4f}" if p.loss is not None else ""
    step = f" step {p.step}/{p.max_steps}" if p.max_steps else ""
    print(f"[{p.phase}]{step}{loss} {p.message}".rstrip(), file=sys.stderr, flush=True)


def _run_gemma(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from lib.finetune.gemma import GemmaTrainConfig, result_summary, train_gemma

    try:
        cfg = GemmaTrainConfig(
            model_id=args.model_id, data_dir=args.data, out=args.out, max_steps=args.max_steps, epochs=args.epochs,
            lora_r=args.lora_r, lora_alpha=args.lora_alpha, qlora=args.qlora, merge=args.merge,
            batch_size=args.batch_size, grad_accum=args.grad_accum, learning_rate=args.learning_rate,
            save_steps=args.save_steps, eval_limit=args.eval_limit,
            eval_before=not args.no_eval_before, adapter_name=args.adapter_name,
            resume=True if args.resume else None, task_attempt=load_settings().task_attempt, device=args.device,
        )
    except ValidationError as exc:
        raise UserError("; ".join(f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}"
                                  for e in exc.errors())) from None
    result = train_gemma(cfg, progress=_print_gemma_progress)
    print(json.dumps(result_summary(result)))
    return 0


# --- finetune submit --------------------------------------------------------------------------------------

def _add_submit(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "submit", help="run the Gemma LoRA trainer as a Cloud Run Job (GPU)",
        description="Create and execute a Cloud Run Job running `python -m lib finetune gemma ARGS`. "
                    "Arguments after -- go to the trainer.")
    add_job_arguments(parser, name="pets-finetune", gpu_default="nvidia-l4")
    parser.add_argument("trainer_args", nargs=argparse.REMAINDER, help="-- then arguments for finetune gemma")
    parser.set_defaults(func=_submit)


def finetune_job_options(args: argparse.Namespace) -> FinetuneJobOptions:
    """`finetune submit` flags as the library's typed job options."""
    return FinetuneJobOptions(
        image=args.image, trainer_args=tuple(a for a in args.trainer_args or [] if a != "--"), name=args.name,
        project=args.project, region=args.region, gpu_type=args.gpu_type, cpu=args.cpu, memory=args.memory,
        tasks=args.tasks, parallelism=args.parallelism, max_retries=args.max_retries,
        task_timeout_s=args.task_timeout, env=parse_pairs(args.env, "--env"),
        secrets=parse_pairs(args.secret, "--secret") if args.secret else None,
        volumes=tuple(parse_volumes(args.volume)), service_account=args.service_account,
        skip_region_check=args.skip_region_check,
    )


def _submit(args: argparse.Namespace) -> int:
    spec = finetune_spec(finetune_job_options(args))
    result = submit_job(spec, dry_run=args.dry_run, follow=not args.no_follow, poll_s=args.poll_s)
    print(json.dumps(result))
    return 0 if result.get("state") in (None, "pending", "running", "succeeded") else 1
