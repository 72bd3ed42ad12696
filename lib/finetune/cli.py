"""`python -m lib finetune ...`: local (CPU head), gemma (LoRA), submit (Cloud Run Job)."""

from __future__ import annotations

import argparse

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register `finetune` and its subcommands."""
    parser = sub.add_parser("finetune", help="train a tuned model (local head, Gemma LoRA, Cloud Run Job)")
    commands = parser.add_subparsers(dest="finetune_command", required=True, metavar="TRAINER")
    from lib.finetune import local

    local.add_command(commands)
    from lib.finetune import gemma

    gemma.add_command(commands)
    from lib.cloudrun import jobs

    jobs.add_submit_command(commands)
