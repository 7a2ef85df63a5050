"""A local Hugging Face model folder as the builder reads it: its `config.json`, read once, and what it says.

The demo model `taxreg model init` builds carries DEMO_MARK in its config (and so does every folder exported from
it), so every command and card can say "a DEMO model" without guessing from names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import RegistryError

CONFIG = "config.json"
DEMO_MARK = "taxreg_demo_model"
DEMO_NAME = "taxreg-demo-granite"  # the demo base model's name in the catalog (with @revision) and in releases


class ModelFolderError(RegistryError):
    """A model folder's config.json is missing or is not a JSON object."""


@dataclass(frozen=True, slots=True)
class ModelFolder:
    path: Path
    config: Mapping[str, Any]

    @classmethod
    def read(cls, path: Path, hint: str = "pass a local Hugging Face model folder") -> ModelFolder:
        """The folder with its config; a missing or malformed config.json is an error naming the file."""
        file = path / CONFIG
        try:
            config = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelFolderError(f"{path} has no {CONFIG}: not a Hugging Face model folder", hint=hint) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelFolderError(f"{file} cannot be read: {exc}", hint=hint) from None
        except ValueError as exc:
            raise ModelFolderError(f"{file} is not valid JSON ({exc})", hint=hint) from None
        if not isinstance(config, dict):
            raise ModelFolderError(f"{file} is not a JSON object", hint=hint)
        return cls(path, config)

    @classmethod
    def lenient(cls, path: Path) -> ModelFolder:
        """The folder with whatever config it has ({} when none can be read): for questions like `is_demo` that a
        folder without a config answers with no."""
        try:
            return cls.read(path)
        except ModelFolderError:
            return cls(path, {})

    @property
    def is_demo(self) -> bool:
        return self.config.get(DEMO_MARK) is True

    @property
    def model_type(self) -> str | None:
        value = self.config.get("model_type")
        return value if isinstance(value, str) else None
