"""`seed`: seed examples become chat samples, deterministically, with no model.

Skills: system, user (question, after the context for grounded skills), assistant (answer). Knowledge:
each context with its Q/A pairs becomes grounded samples, linked to the seed and to the document
chunks that hold the context.
"""

from __future__ import annotations

from builder.generators.base import GeneratorInput, LoadedDocument
from registry.catalog.generation import LeafInput, SeedRow
from registry.records import sha256_bytes
from registry.samples import Edge, Sample

SYSTEM_PROMPT = ("You are a helpful assistant trained on the Taxonomy Registry's community contributions. "
                 "Answer accurately and concisely.")
TEMPLATE_VERSION = "seed-v1"


def user_turn(question: str, context: str | None) -> str:
    return f"{context.strip()}\n\n{question.strip()}" if context else question.strip()


class SeedGenerator:
    name = "seed"
    template_sha256: str | None = sha256_bytes(f"{TEMPLATE_VERSION}\n{SYSTEM_PROMPT}".encode())

    def generate(self, given: GeneratorInput) -> list[Sample]:
        return [self._sample(leaf, seed, given.documents) for leaf in given.leaves for seed in leaf.seeds]

    def _sample(self, leaf: LeafInput, seed: SeedRow, documents: dict[str, LoadedDocument]) -> Sample:
        messages = [{"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": user_turn(seed.question, seed.context)},
                    {"role": "assistant", "content": seed.answer.strip()}]
        lineage = [Edge("seed", seed.seed_id, "seed_example", leaf.contribution_id, leaf.version_id)]
        if leaf.kind == "knowledge" and seed.context:
            lineage.extend(_grounding(seed.context, leaf, documents))
        return Sample.make(messages, leaf.kind, lineage)


def _grounding(context: str, leaf: LeafInput, documents: dict[str, LoadedDocument]) -> list[Edge]:
    """The chunks whose characters overlap where the context stands in the document."""
    edges: list[Edge] = []
    for row in leaf.documents:
        doc = documents.get(row.doc_sha256)
        span = doc.spans.find(context) if doc else None
        if doc is None or span is None:
            continue
        start, end = span
        edges.extend(Edge("chunk", c.chunk_sha256, "grounding_chunk", leaf.contribution_id, leaf.version_id,
                          doc.doc_sha256, "context_offsets")
                     for c in doc.chunks if c.char_start < end and start < c.char_end)
    return edges
