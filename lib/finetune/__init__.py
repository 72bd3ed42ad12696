"""Trainers: the local CPU head for `pets-tuned` and the Gemma LoRA trainer for Cloud Run Jobs.

Cheap to import: torch, transformers, peft and TRL load inside the functions that train or evaluate.
"""

from lib.finetune.gemma import (
    LORA_TARGETS,
    GemmaProgress,
    GemmaTrainConfig,
    GemmaTrainResult,
    config_sha256,
    load_base,
    make_trainer,
    result_summary,
    train_gemma,
)
from lib.finetune.gemma_card import VLLM_LORA_RANKS, model_card, serve_command, served_path, vllm_lora_rank
from lib.finetune.gemma_ckpt import (
    MARKER,
    META_FILE,
    Checkpoint,
    CheckpointMeta,
    check_compatible,
    output_store,
    prune_checkpoints,
    publish_checkpoint,
    read_meta,
    scan_checkpoints,
)
from lib.finetune.gemma_data import completion_messages, load_photo, load_split, prompt_messages, sft_dataset
from lib.finetune.gemma_eval import EvalSummary, HeldOutAnswer, evaluate_held_out
from lib.finetune.local import (
    HeldOutAnswers,
    LocalTrainResult,
    answer_held_out,
    fit_head,
    server_view,
    train_local,
)
from lib.finetune.runs import (
    TUNING_DIR,
    FinishedRun,
    TrainingProgress,
    execution_cost_usd,
    list_finished_runs,
    local_training_job,
    new_tuning_run_name,
    read_finished_run,
    submit_gemma_job,
)

__all__ = [
    # the local trainer (pets-tuned's head, CPU, seconds)
    "HeldOutAnswers", "LocalTrainResult", "answer_held_out", "fit_head", "server_view", "train_local",
    # training runs as the Tuning page sees them
    "TUNING_DIR", "FinishedRun", "TrainingProgress", "execution_cost_usd", "list_finished_runs",
    "local_training_job", "new_tuning_run_name", "read_finished_run", "submit_gemma_job",
    # the Gemma LoRA trainer
    "LORA_TARGETS", "GemmaProgress", "GemmaTrainConfig", "GemmaTrainResult", "config_sha256", "load_base",
    "make_trainer", "result_summary", "train_gemma",
    # its samples, held-out evaluation, checkpoints and model card
    "completion_messages", "load_photo", "load_split", "prompt_messages", "sft_dataset",
    "EvalSummary", "HeldOutAnswer", "evaluate_held_out",
    "MARKER", "META_FILE", "Checkpoint", "CheckpointMeta", "check_compatible", "output_store", "prune_checkpoints",
    "publish_checkpoint", "read_meta", "scan_checkpoints",
    "VLLM_LORA_RANKS", "model_card", "serve_command", "served_path", "vllm_lora_rank",
]
