"""Typed errors of the domain. The CLI turns each into a message and an exit code in one place."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base class: something the user must fix before the command can run (exit code 2)."""

    hint: str = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint or self.hint

    def __reduce__(self) -> tuple[Any, ...]:  # keeps the hint when raised in a worker process
        return (self.__class__, (str(self), self.hint))


class EnvironmentProblem(RegistryError):
    """The machine lacks something the registry needs (libyaml, git)."""


class TaxonomyNotFound(RegistryError):
    """The taxonomy root does not exist or holds no taxonomy folders."""


class GitError(RegistryError):
    """A git operation failed: not a repository, unknown ref, clone failure."""


class CatalogError(RegistryError):
    """The catalog cannot be opened, is locked, too new, or refused a statement."""


class CatalogInUse(CatalogError):
    """Another process has the catalog open for writing."""


class QueryError(CatalogError):
    """An auditor's SQL failed or tried to write to the read-only catalog."""


class ValidationFailed(RegistryError):
    """Indexing refused because validation found errors (the previous catalog is untouched)."""

    def __init__(self, message: str, hint: str = "", findings: list[Any] | None = None) -> None:
        super().__init__(message, hint)
        self.findings = findings or []

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (str(self), self.hint, self.findings))
