"""Tiny randomly initialised models of every family `taxreg build` can release, built from the family's own
transformers config class: the real code paths of train, export and serve in seconds.

Each family gets its own chat format (Granite role markers, Llama 3 headers, ChatML, Mistral [INST]) with its
special tokens added to one byte-level BPE trained on the embedded taxonomy, and a README whose front matter
names its license, as a model hub snapshot has. `make_base(family, folder)` writes such a folder.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLE_TAXONOMY

# Small enough for seconds per family on two cores, big enough to have GQA (4 heads over 2 KV heads)
SIZES = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "max_position_embeddings": 256}

LLAMA3_TEMPLATE = (
    "{{- bos_token }}{%- for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{%- endfor %}"
    "{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{%- endif %}")
CHATML_TEMPLATE = (
    "{%- for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}")
MISTRAL_TEMPLATE = (
    "{{- bos_token }}{%- for m in messages %}{%- if m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}"
    "{%- else %}[INST] {{ m['content'] }} [/INST]{%- endif %}{%- endfor %}")


# transformers picks Qwen2's tokenizer class for model_type qwen2 whatever the folder says, and it adds
# <|endoftext|> (its unk token): a real Qwen vocabulary has it, so the tiny one does too
QWEN_SPECIAL = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")


@dataclass(frozen=True)
class Family:
    name: str
    config: Callable[[int, dict[str, int]], Any]  # (vocab size, token ids) -> a transformers config
    model_type: str
    template: str | None  # None: the demo's Granite template (with generation markers)
    special: tuple[str, ...] = ()  # tokens the template needs, added to the shared BPE
    ids: tuple[str, str, str] = ("<|end_of_text|>", "<|end_of_text|>", "<|pad|>")  # bos, eos, pad
    tied: bool = True


def _granite(vocab: int, ids: dict[str, int]) -> Any:
    from transformers import GraniteConfig

    return GraniteConfig(vocab_size=vocab, **SIZES, tie_word_embeddings=True, embedding_multiplier=12.0,
                         residual_multiplier=0.22, attention_multiplier=1 / 16, logits_scaling=8.0, **ids)


def _llama3(vocab: int, ids: dict[str, int]) -> Any:
    """SmolLM2's shape in small: tied embeddings, Llama 3 rope scaling (low/high frequency bands)."""
    from transformers import LlamaConfig

    rope = {"rope_type": "llama3", "rope_theta": 100000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    return LlamaConfig(vocab_size=vocab, **SIZES, tie_word_embeddings=True, rope_parameters=rope, **ids)


def _llama_untied(vocab: int, ids: dict[str, int]) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=vocab, **SIZES, tie_word_embeddings=False, **ids)


def _qwen2(vocab: int, ids: dict[str, int]) -> Any:
    """Bias on q/k/v (Qwen2's), untied like the larger Qwen2.5 models."""
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=vocab, **SIZES, tie_word_embeddings=False, **ids)


def _qwen3(vocab: int, ids: dict[str, int]) -> Any:
    """QK-norm, and a head_dim (32) that is not hidden / heads (16), as in every Qwen3."""
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=vocab, **SIZES, head_dim=32, tie_word_embeddings=True, **ids)


def _mistral(vocab: int, ids: dict[str, int]) -> Any:
    """A sliding window (8 tokens) shorter than the parity prompts, so the window's mask is what is checked."""
    from transformers import MistralConfig

    return MistralConfig(vocab_size=vocab, **SIZES, sliding_window=8, tie_word_embeddings=False, **ids)


FAMILIES = {f.name: f for f in (
    Family("granite", _granite, "granite", None),
    Family("llama3", _llama3, "llama", LLAMA3_TEMPLATE, ("<|begin_of_text|>", "<|start_header_id|>",
                                                         "<|end_header_id|>", "<|eot_id|>"),
           ("<|begin_of_text|>", "<|eot_id|>", "<|pad|>")),
    Family("llama-untied", _llama_untied, "llama", LLAMA3_TEMPLATE, ("<|begin_of_text|>", "<|start_header_id|>",
                                                                     "<|end_header_id|>", "<|eot_id|>"),
           ("<|begin_of_text|>", "<|eot_id|>", "<|pad|>"), tied=False),
    Family("qwen2", _qwen2, "qwen2", CHATML_TEMPLATE, QWEN_SPECIAL,
           ("<|im_end|>", "<|im_end|>", "<|pad|>"), tied=False),
    Family("qwen3", _qwen3, "qwen3", CHATML_TEMPLATE, QWEN_SPECIAL,
           ("<|im_end|>", "<|im_end|>", "<|pad|>")),
    Family("mistral", _mistral, "mistral", MISTRAL_TEMPLATE, ("<s>", "</s>", "[INST]", "[/INST]"),
           ("<s>", "</s>", "<|pad|>"), tied=False),
)}


@functools.cache
def _corpus() -> tuple[str, ...]:
    from builder.model.demo import taxonomy_corpus
    from registry.config import ValidationConfig

    return tuple(taxonomy_corpus(EXAMPLE_TAXONOMY, ValidationConfig()).texts)


def tokenizer_for(family: Family) -> Any:
    """The shared byte-level BPE (512 tokens) with the family's template and special tokens."""
    from builder.model.demo import DemoSpec, build_tokenizer

    tokenizer = build_tokenizer(list(_corpus()), DemoSpec(vocab=512, context=SIZES["max_position_embeddings"]))
    if family.template is not None:
        tokenizer.add_special_tokens({"additional_special_tokens": list(family.special)})
        tokenizer.chat_template = family.template
        bos, eos, _ = family.ids
        tokenizer.bos_token, tokenizer.eos_token = bos, eos
    return tokenizer


def make_base(family: str | Family, folder: Path, seed: int = 0, license: str | None = "apache-2.0") -> Path:
    """A local Hugging Face folder of `family` (random weights from `seed`): safetensors, config, tokenizer with
    its chat template, and a README naming `license` in its front matter (None: no README)."""
    import torch

    fam = FAMILIES[family] if isinstance(family, str) else family
    tokenizer = tokenizer_for(fam)
    names = dict(zip(("bos_token_id", "eos_token_id", "pad_token_id"), fam.ids, strict=True))
    ids = {key: tokenizer.convert_tokens_to_ids(token) for key, token in names.items()}
    config = fam.config(len(tokenizer), ids)
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # std 0.02 gives near-uniform logits: wider weights give greedy choices a margin
        model.get_input_embeddings().weight.normal_(0.0, 0.5)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if license is not None:
        (folder / "README.md").write_text(f"---\nlicense: {license}\nlibrary_name: transformers\n---\n\n"
                                          f"# tiny-{fam.name}\n\nRandom weights, for tests.\n", encoding="utf-8")
    return folder


def config_of(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "config.json").read_text(encoding="utf-8")))
