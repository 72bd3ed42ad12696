"""Training throughput of the Gemma LoRA trainer on a random Gemma 3 VLM: samples/s and peak memory.

Runs the trainer's own `make_trainer` (TRL SFTTrainer, LoRA on the language model, answer-only
loss) on synthetic photos. On CUDA: the ~0.4 B-parameter "bench" shape in bf16. On the CPU: the
tiny shape for a few steps, which shows the script works, not how fast a GPU is.

    .venv/bin/python benchmarks/gemma_train_bench.py                 # CUDA if present, else CPU tiny
    .venv/bin/python benchmarks/gemma_train_bench.py --size bench --steps 20 --batch-size 16

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.finetune import GemmaTrainConfig, load_base, load_split, make_trainer
from testkit.gemma_random import SIZES, save_random_gemma3


def write_photos(folder: Path, per_breed: int) -> None:
    """Synthetic photos named like the dataset; every breed its own colour."""
    from PIL import Image

    rng = random.Random(0)
    for b, breed in enumerate(["Abyssinian", "beagle", "pug", "Persian", "boxer", "samoyed"]):
        for n in range(1, per_breed + 1):
            colour = ((b * 40 + rng.randint(0, 30)) % 256, rng.randint(0, 255), (255 - b * 40) % 256)
            Image.new("RGB", (320, 240), colour).save(folder / f"{breed}_{n}.jpg", quality=90)


def main() -> int:
    import torch
    from transformers import TrainerCallback

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default=None, help="default: bench on CUDA, tiny on CPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 20 on CUDA, 5 on CPU)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first steps")
    parser.add_argument("--batch-size", type=int, default=None, help="default 16 on CUDA, 4 on CPU")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--activation-checkpointing", choices=["on", "off", "auto"], default="auto")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    size = args.size or ("bench" if cuda else "tiny")
    steps = args.steps or (20 if cuda else 5)
    batch = args.batch_size or (16 if cuda else 4)
    checkpointing = {"on": True, "off": False, "auto": None}[args.activation_checkpointing]

    with tempfile.TemporaryDirectory(prefix="gemma-bench-") as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        write_photos(root / "photos", per_breed=max(4, batch) + 2)  # the held-out split keeps 2 per breed
        save_random_gemma3(root / "model", size)
        cfg = GemmaTrainConfig(
            model_id=str(root / "model"), data_dir=root / "photos", out=str(root / "out"),
            max_steps=args.warmup + steps, batch_size=batch, lora_r=args.lora_r, save_steps=10**6,
            device=device, activation_checkpointing=checkpointing,
        )
        model, processor = load_base(cfg.model_id, device=device)
        n_params = sum(p.numel() for p in model.parameters())
        train, _ = load_split(cfg.data_dir)

        marks: dict[int, float] = {}

        class Clock(TrainerCallback):
            def on_step_end(self, a, state, control, **kw):  # type: ignore[no-untyped-def]
                if cuda:
                    torch.cuda.synchronize()
                marks[state.global_step] = time.perf_counter()

        trainer = make_trainer(cfg, model, processor, train, root / "staging", device, [Clock()])
        tokens = int(trainer.data_collator([trainer.train_dataset[0]])["input_ids"].shape[1])
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
        timed_s = marks[args.warmup + steps] - marks[args.warmup]

    figures = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "size": size,
        "params_m": round(n_params / 1e6, 1),
        "dtype": "bfloat16" if cuda else "float32",
        "batch_size": batch,
        "tokens_per_sample": tokens,
        "timed_steps": steps,
        "activation_checkpointing": checkpointing if checkpointing is not None else cuda,
        "ms_per_step": round(1000 * timed_s / steps, 1),
        "samples_per_s": round(steps * batch / timed_s, 2),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
