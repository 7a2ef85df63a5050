"""Generators turn the catalog's seeds and document chunks into training samples with lineage."""

from __future__ import annotations

from builder.generators.base import Generator, GeneratorInput
from builder.generators.seed import SeedGenerator
from builder.generators.teacher import TeacherGenerator

GENERATORS: dict[str, type[Generator]] = {"seed": SeedGenerator, "teacher": TeacherGenerator}

__all__ = ["GENERATORS", "Generator", "GeneratorInput"]
