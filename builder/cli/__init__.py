"""`taxreg`: each command parses options, calls one library function, renders, picks an exit code.

Commands live in modules named after what they drive; importing them registers them on `app`.
Heavy libraries (torch, transformers, onnxruntime, mkdocs) are imported inside commands, never here.
"""

from __future__ import annotations

import sys

from builder.cli import (  # noqa: F401  (importing a command module registers its commands)
    build,
    dataset,
    documents,
    evaluate,
    export,
    generate,
    index,
    model,
    query,
    release,
    serve,
    site,
    validate,
)
from builder.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
