"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme): one value, one byte string, one hash."""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785


def canonical_bytes(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, ECMAScript number form (via the `rfc8785` library)."""
    return rfc8785.dumps(value)


def canonical_sha256(value: Any) -> str:
    return hashlib.sha256(canonical_bytes(value)).hexdigest()
