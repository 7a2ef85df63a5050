"""Serving an exported model: `engine` (onnxruntime, KV-cache decoding, sampling), `text` (tokenizer, chat template,
stop strings), `api` (the OpenAI-compatible HTTP API), `chat` (a terminal conversation).

Only this module is light: the CLI imports the others inside its commands.
"""

from __future__ import annotations

from enum import StrEnum


class Device(StrEnum):
    """Where onnxruntime runs: `auto` takes CUDA when onnxruntime-gpu offers it, else the CPU."""

    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"
