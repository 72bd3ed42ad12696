"""Randomly initialised Gemma 3 vision-language checkpoints built offline, for tests and benchmarks.

`save_random_gemma3(folder, size="tiny")` writes a model and processor that the production loader
(`AutoProcessor` / `AutoModelForImageTextToText.from_pretrained(folder)`) reads like a real one.
The tokenizer is character level (every printable ASCII character plus Gemma's special tokens),
so no vocabulary file is ever downloaded.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["RandomGemmaSize", "SIZES", "CHAT_TEMPLATE", "build_processor", "build_model", "save_random_gemma3"]

SPECIAL_TOKENS = (
    "<pad>", "<eos>", "<bos>", "<unk>", "<mask>",
    "<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>", "<image_soft_token>",
)

# Gemma 3's own template, reduced to what a single-turn photo question needs.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}"
    "{{ '<start_of_turn>' + role + '\n' }}"
    "{%- if message['content'] is string -%}{{ message['content'] | trim }}"
    "{%- else -%}{%- for item in message['content'] -%}"
    "{%- if item['type'] == 'image' -%}{{ '<start_of_image>' }}"
    "{%- elif item['type'] == 'text' -%}{{ item['text'] | trim }}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{ '<end_of_turn>\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}"
)


@dataclass(frozen=True)
class RandomGemmaSize:
    """Shape of a random Gemma 3 VLM; `image_side` / `patch` / `mm_tokens` fix the image token count."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vision_hidden: int
    vision_intermediate: int
    vision_layers: int
    vision_heads: int
    image_side: int
    patch: int
    mm_tokens: int


SIZES: dict[str, RandomGemmaSize] = {
    # Seconds per step on two CPU cores.
    "tiny": RandomGemmaSize(32, 64, 2, 2, 1, 16, 32, 64, 1, 2, 32, 8, 4),
    # ~0.3 B parameters with the character vocabulary: big enough that a GPU step measures real work.
    "bench": RandomGemmaSize(1536, 6144, 10, 8, 4, 192, 768, 3072, 6, 12, 224, 14, 64),
}


def _vocab() -> dict[str, int]:
    chars = sorted(set(string.printable) - set(" \t\r\x0b\x0c")) + ["▁"]
    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    return {token: i for i, token in enumerate([*SPECIAL_TOKENS, *byte_tokens, *chars])}


def build_processor(size: RandomGemmaSize) -> Any:
    """A `Gemma3Processor` with a character tokenizer and a PIL image processor at `size.image_side`."""
    from transformers import Gemma3Processor
    from transformers.models.gemma.tokenization_gemma import GemmaTokenizer
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    tokenizer = GemmaTokenizer(
        vocab=_vocab(),
        merges=[],
        boi_token="<start_of_image>",
        eoi_token="<end_of_image>",
        image_token="<image_soft_token>",
        extra_special_tokens=list(SPECIAL_TOKENS[5:]),
    )
    images = Gemma3ImageProcessorPil(size={"height": size.image_side, "width": size.image_side})
    return Gemma3Processor(
        image_processor=images, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE, image_seq_length=size.mm_tokens
    )


def build_model(size: RandomGemmaSize, seed: int = 0) -> Any:
    """A randomly initialised `Gemma3ForConditionalGeneration` matching `build_processor(size)`."""
    import torch
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration, Gemma3TextConfig, SiglipVisionConfig

    vocab = _vocab()
    text = Gemma3TextConfig(
        vocab_size=len(vocab),
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads,
        head_dim=size.head_dim,
        query_pre_attn_scalar=size.head_dim,
        sliding_window=512,
        max_position_embeddings=4096,
        pad_token_id=vocab["<pad>"],
        eos_token_id=vocab["<eos>"],
        bos_token_id=vocab["<bos>"],
    )
    vision = SiglipVisionConfig(
        hidden_size=size.vision_hidden,
        intermediate_size=size.vision_intermediate,
        num_hidden_layers=size.vision_layers,
        num_attention_heads=size.vision_heads,
        image_size=size.image_side,
        patch_size=size.patch,
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=size.mm_tokens,
        boi_token_index=vocab["<start_of_image>"],
        eoi_token_index=vocab["<end_of_image>"],
        image_token_index=vocab["<image_soft_token>"],
    )
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config)
    # Generation should stop at the end of the model's turn, as Gemma's own generation config says.
    model.generation_config.eos_token_id = [vocab["<eos>"], vocab["<end_of_turn>"]]
    model.generation_config.pad_token_id = vocab["<pad>"]
    return model


def save_random_gemma3(folder: Path | str, size: Literal["tiny", "bench"] = "tiny", seed: int = 0) -> Path:
    """Write a random Gemma 3 VLM and its processor to `folder`; returns the folder."""
    folder = Path(folder)
    shape = SIZES[size]
    build_model(shape, seed).save_pretrained(folder)
    build_processor(shape).save_pretrained(folder)
    return folder
