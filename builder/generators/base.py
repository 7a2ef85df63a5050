"""What every generator gets and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from registry.catalog.generation import LeafInput
from registry.chunking import Chunk
from registry.samples import Sample


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    doc_sha256: str
    text: str
    chunks: tuple[Chunk, ...]


@dataclass(frozen=True, slots=True)
class GeneratorInput:
    leaves: list[LeafInput]
    documents: dict[str, LoadedDocument]  # by doc_sha256
    random_seed: int


class Generator(Protocol):
    name: str
    template_sha256: str | None  # hash of the prompt template(s): part of every run's provenance

    def generate(self, given: GeneratorInput) -> list[Sample]: ...
