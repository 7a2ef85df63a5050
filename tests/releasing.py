"""Helpers shared by the release tests: the data stages of a build, a data-only cut, and catalog queries."""

from __future__ import annotations

from pathlib import Path

from builder.datasets import DatasetOptions, build_dataset
from builder.generators.run import GenerateOptions, generate
from builder.release.cut import CutOptions, cut_release
from registry.catalog.indexer import index
from registry.catalog.query import run_query
from registry.config import ValidationConfig
from tests.conftest import EXAMPLE_TAXONOMY


def build_data(build: Path, taxonomy: Path = EXAMPLE_TAXONOMY, config: ValidationConfig | None = None) -> Path:
    """index -> generate -> dataset build into BUILD, as `taxreg build` does before the model stages."""
    catalog = build / "catalog.duckdb"
    index(taxonomy, catalog, config)
    generate(taxonomy, catalog, GenerateOptions())
    build_dataset(catalog, build / "datasets", DatasetOptions())
    return build


def cut(build: Path, version: str, **kwargs: object) -> Path:
    return cut_release(CutOptions(version, build, with_model=False, **kwargs)).folder  # type: ignore[arg-type]


def rows(build: Path, sql: str) -> list[tuple[object, ...]]:
    return run_query(build / "catalog.duckdb", sql).rows


def make_key(folder: Path, name: str) -> tuple[Path, Path]:
    """A fresh ECDSA P-256 signing key as `<name>.pem` (private, PKCS8) and `<name>.pub` (public) in `folder`."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public
