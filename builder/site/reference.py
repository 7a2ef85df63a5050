"""Reference pages generated from the code itself, so they cannot drift: every rule code of
`registry.findings.RULES` (the command-line reference is the CLI's own: builder/cli/reference.py), and the
escaping both use for markdown tables."""

from __future__ import annotations

from html import escape


def rules_markdown() -> str:
    from registry.findings import RULES

    parts = ["| code | name | severity | what it checks | how to fix it |", "|---|---|---|---|---|"]
    for code, rule in sorted(RULES.items()):
        parts.append(f'| <span id="{code.lower()}"></span>`{code}` | `{rule.name}` | {rule.severity.value} | '
                     f"{cell(rule.summary)} | {cell(rule.fix)} |")
    return "\n".join(parts) + "\n"


def text(value: str) -> str:
    """One line of escaped text."""
    return escape(" ".join(value.split()), quote=False)


def cell(value: str) -> str:
    """Text for a markdown table cell."""
    return text(value).replace("|", "\\|")
