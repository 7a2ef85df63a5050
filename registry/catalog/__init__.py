"""The DuckDB catalog: schema and migrations, the index writer, the verdict cache and read-only queries."""

from registry.catalog.connection import SCHEMA_VERSION, open_catalog, open_read_only

__all__ = ["SCHEMA_VERSION", "open_catalog", "open_read_only"]
