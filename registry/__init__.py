"""Taxonomy Registry: the domain (loading, validation, documents, catalog). Pure: no terminal output."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("taxonomy-registry")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
