"""The base model folder that `taxreg train` and `taxreg export` read: checked, then loaded strictly.

Any local Hugging Face decoder-only causal LM: safetensors only (unpickling can run code), never remote code, and
every weight of the architecture must come from the files. transformers would otherwise initialise missing
weights at random and carry on, so a renamed or mismatched checkpoint would train and export noise.
Imported lazily (torch, transformers) except for `check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.model import onnx_graph
from registry.errors import RegistryError
from registry.model_folder import CONFIG, ModelFolder

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
HINT = "run `taxreg model init`, or pass --base-model with a local Hugging Face model folder"


def check(folder: Path) -> None:
    """A local causal-LM folder with safetensors weights and a tokenizer; pickled weights are refused."""
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "not there"
        raise RegistryError(f"no base model folder at {folder} ({what})", hint=HINT)
    config = _config(folder)
    architectures = config.get("architectures") or []
    if config.get("is_encoder_decoder") or (architectures and not any(
            str(a).endswith("ForCausalLM") for a in architectures)):
        described = ", ".join(map(str, architectures)) or "an encoder-decoder"
        raise RegistryError(f"{folder / 'config.json'} describes {described} ({config['model_type']}), not a "
                            "decoder-only causal LM", hint="pass a causal language model (Granite, Llama, Mistral...)")
    if not any(folder.glob("*.safetensors")):
        raise RegistryError(f"{folder} has no .safetensors weights{pickles_found(folder)}; pickled weights are "
                            "never loaded: unpickling can run arbitrary code",
                            hint="convert the weights to safetensors (e.g. save_pretrained(safe_serialization=True) "
                                 "in a sandbox), or pass another --base-model")
    if not (folder / "tokenizer.json").is_file() and not (folder / "tokenizer_config.json").is_file():
        raise RegistryError(f"{folder} has no tokenizer (tokenizer.json or tokenizer_config.json)", hint=HINT)


def check_exportable(folder: Path) -> Mapping[str, Any]:
    """`check`, and a family (model_type, rope scaling) the ONNX export handles; returns the config."""
    check(folder)
    config = _config(folder)
    onnx_graph.check_family(config, folder / CONFIG)
    return config


@dataclass(frozen=True, slots=True)
class BaseFacts:
    """What the build's base-model check found, from headers and small files (no weights loaded)."""

    model_type: str
    parameters: int
    vocab_size: int  # the embedding's rows
    tokens: int  # the tokenizer's, special tokens included


def check_base(folder: Path) -> BaseFacts:
    """Everything about a base folder that would fail `taxreg build` after minutes of training, in seconds: a causal
    LM of an exportable family with safetensors weights, a tokenizer that loads, has a chat template and fits the
    embedding (token ids past its rows would index nothing)."""
    config = check_exportable(folder)
    tokenizer = load_tokenizer(folder)
    if not getattr(tokenizer, "chat_template", None):
        raise RegistryError(f"{folder}'s tokenizer has no chat template: the release could not hold a conversation",
                            hint="use the model's instruct (chat) version, or add its template as chat_template "
                                 "in tokenizer_config.json or chat_template.jinja")
    vocab = config.get("vocab_size")
    rows, parameters = _weights(folder)
    if isinstance(vocab, int) and rows is not None and rows != vocab:
        raise RegistryError(f"{folder}: the embedding in the safetensors has {rows} rows but config.json says "
                            f"vocab_size {vocab}", hint="pass the config.json the weights were saved with")
    rows = rows if rows is not None else vocab if isinstance(vocab, int) else 0
    if len(tokenizer) > rows:
        raise RegistryError(f"{folder}'s tokenizer has {len(tokenizer)} tokens but the model's embedding only "
                            f"{rows} rows: token ids from {rows} up would index past it",
                            hint="pass the tokenizer the model was trained with (or resize the embedding and save "
                                 "the model again)")
    return BaseFacts(str(config["model_type"]), parameters, rows, len(tokenizer))


EMBEDDING = "model.embed_tokens.weight"  # the input embedding of every family check_family accepts


def _weights(folder: Path) -> tuple[int | None, int]:
    """The embedding's rows and the number of stored parameters, read from the safetensors headers."""
    import math

    from safetensors import SafetensorError, safe_open

    rows, total = None, 0
    for file in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(file), "np") as handle:
                for key in handle.keys():  # noqa: SIM118 (a safe_open handle is not a mapping)
                    shape = handle.get_slice(key).get_shape()
                    total += math.prod(shape)
                    if key == EMBEDDING:
                        rows = int(shape[0])
        except (OSError, SafetensorError) as exc:
            raise RegistryError(f"{file} is not a readable safetensors file: {brief(exc)}",
                                hint="download or save the weights again") from None
    return rows, total


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RegistryError(f"cannot load the tokenizer of {folder}: {brief(exc)}",
                            hint="check tokenizer.json / tokenizer_config.json (transformers must load them)") \
            from None


def pickles_found(folder: Path) -> str:
    """` (found a.bin, b.pt)` when `folder` holds pickled weights, else an empty string: for refusals."""
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    return f" (found {', '.join(pickles)})" if pickles else ""


def _config(folder: Path) -> Mapping[str, Any]:
    model = ModelFolder.read(folder, HINT)
    if model.model_type is None:
        raise RegistryError(f"{folder / CONFIG} names no model_type", hint=HINT)
    return model.config


def load(folder: Path) -> tuple[Any, Any]:
    """The model in fp32 and its tokenizer; any weight the files do not provide, or do not fit, is an error."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    check(folder)
    tokenizer = load_tokenizer(folder)
    model: Any
    info: dict[str, Any]
    try:
        # mismatched shapes are reported in `info` (and refused below) rather than raised without naming them
        loaded: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True,
                                                           trust_remote_code=False, output_loading_info=True,
                                                           ignore_mismatched_sizes=True)
        model, info = loaded
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as exc:
        raise RegistryError(f"cannot load {folder} as a causal language model: {brief(exc)}",
                            hint="check config.json and the .safetensors files (truncated? another model's?); "
                                 "no remote code is run") from None
    _refuse_gaps(folder, info)
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise RegistryError(f"{folder}'s tokenizer has {len(tokenizer)} tokens but the model's embedding only {rows} "
                            f"rows: token ids from {rows} up would index past it",
                            hint="pass the tokenizer the model was trained with (or resize the embedding and save "
                                 "the model again)")
    return model, tokenizer


def _refuse_gaps(folder: Path, info: dict[str, Any]) -> None:
    gaps = {"missing from the files": sorted(info.get("missing_keys") or []),
            "in the files but not in the architecture": sorted(info.get("unexpected_keys") or []),
            "of the wrong shape": sorted(str(k[0]) if isinstance(k, tuple) else str(k)
                                         for k in info.get("mismatched_keys") or [])}
    found = [f"{len(keys)} weight(s) {what} (e.g. {keys[0]})" for what, keys in gaps.items() if keys]
    if found:
        raise RegistryError(f"{folder}'s safetensors do not match its config.json: {'; '.join(found)}",
                            hint="the weights would be initialised at random; pass the folder the weights were "
                                 "saved with (save_pretrained)")


def brief(exc: BaseException) -> str:
    """transformers' messages run to pages (every known config class): the first line says what went wrong."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:400]
