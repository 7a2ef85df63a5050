"""What every generator gets and returns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from builder.progress import Report, ignore
from registry.catalog.generation import LeafInput
from registry.chunking import Chunk
from registry.samples import Sample
from registry.spans import SpacedText

if TYPE_CHECKING:
    from builder.generators.batch import BatchFiles
    from builder.generators.teacher import TeacherConfig


@dataclass(frozen=True, slots=True)
class LoadedDocument:
    doc_sha256: str
    text: str
    chunks: tuple[Chunk, ...]
    spans: SpacedText  # finds quoted passages (seed contexts) in the text

    @classmethod
    def make(cls, doc_sha256: str, text: str, chunks: tuple[Chunk, ...]) -> LoadedDocument:
        return cls(doc_sha256, text, chunks, SpacedText(text))


@dataclass(frozen=True, slots=True)
class GeneratorInput:
    leaves: list[LeafInput]
    documents: dict[str, LoadedDocument]  # by doc_sha256
    random_seed: int
    teacher: TeacherConfig | None = None  # the teacher generator's endpoint and parameters
    catalog: Any = None  # the open catalog connection: the teacher journals its requests there
    run_id: str = ""
    progress: Report = ignore  # long generators (the teacher) report how many of their requests are done
    batch: BatchFiles | None = None  # answer through Batch API files instead of asking the endpoint live


class Generator(Protocol):
    name: str
    template_sha256: str | None  # hash of the prompt template(s): part of every run's provenance

    def generate(self, given: GeneratorInput) -> list[Sample]: ...
