"""Versioned Jinja prompt templates (`templates/NAME_VERSION.j2`): read once, hashed, rendered strictly.

A set's hash (sha256 over its version and every template's text) is part of the provenance of what it asked,
so an edited template is a new set: the runs that used it, and the stages keyed by it, say so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.errors import RegistryError
from registry.records import canonical_json, sha256_bytes

TEMPLATE_DIR = Path(__file__).parent / "templates"


class TemplateSet:
    """The templates `names` of one version; `{% include %}` reaches the others of the set."""

    def __init__(self, names: tuple[str, ...], version: str) -> None:
        self.version = version
        self.texts = {f"{name}_{version}.j2": _read(TEMPLATE_DIR / f"{name}_{version}.j2") for name in names}
        self.sha256 = sha256_bytes(canonical_json({"version": version, "templates": self.texts}).encode())
        self._environment: Any = None

    def hashes(self) -> dict[str, str]:
        return {name: sha256_bytes(text.encode()) for name, text in self.texts.items()}

    def render(self, name: str, **variables: Any) -> str:
        if self._environment is None:
            import jinja2  # only runs that ask a model render prompts

            self._environment = jinja2.Environment(loader=jinja2.DictLoader(self.texts),
                                                   undefined=jinja2.StrictUndefined, autoescape=False,
                                                   keep_trailing_newline=False)
        return str(self._environment.get_template(f"{name}_{self.version}.j2").render(**variables)).strip()


def versions(prefix: str) -> list[str]:
    """The versions present for templates named `prefix_VERSION.j2`, e.g. ["v1"]."""
    return sorted(p.stem.removeprefix(f"{prefix}_") for p in TEMPLATE_DIR.glob(f"{prefix}_*.j2"))


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read the template {path}: {exc.strerror}",
                            hint="reinstall taxonomy-registry: its templates ship with it") from None
