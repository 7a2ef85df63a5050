"""The command-line reference page, generated from the Typer app itself so that it cannot drift: every command
and option. The site's mkdocs hook file registers it as the `<!-- taxreg:cli -->` block (site/hooks/taxreg.py),
so the site package never imports the CLI."""

from __future__ import annotations

from typing import Any

from builder.site.reference import cell, text


def commands() -> list[tuple[str, Any]]:
    """(`taxreg sub command`, command object) for every command of the app, groups walked depth first."""
    import typer

    from builder.cli import app

    found: list[tuple[str, Any]] = []

    def walk(prefix: str, command: Any) -> None:
        if getattr(command, "commands", None):
            for name in sorted(command.commands):
                walk(f"{prefix} {name}", command.commands[name])
        else:
            found.append((prefix, command))

    walk("taxreg", typer.main.get_command(app))
    return found


def options(command: Any) -> list[str]:
    """Every option name (and argument, upper-cased) of a command, as the reference page lists them."""
    return [o for p in command.params if not p.hidden for o in _names(p)]


def cli_markdown() -> str:
    parts = []
    for name, command in commands():
        parts.append(f"## `{name}` {{#{name.replace(' ', '-')}}}\n")
        parts.append(text(command.help or command.short_help or "") + "\n")
        ctx = command.make_context(name, [], resilient_parsing=True)
        rows = [_param_row(p, ctx) for p in command.params if not p.hidden]
        if rows:
            parts.append("| argument or option | type | default | what it does |\n|---|---|---|---|")
            parts.extend(rows)
            parts.append("")
    return "\n".join(parts)


def _names(param: Any) -> list[str]:
    if param.param_type_name == "argument":
        return [str(param.name).upper()]
    return [*param.opts, *param.secondary_opts]


def _param_row(param: Any, ctx: Any) -> str:
    names = ", ".join(f"`{n}`" for n in _names(param))
    default = param.default
    shown = "" if default is None or callable(default) or default in ((), []) else f"`{_plain(default)}`"
    kind = "" if getattr(param, "is_flag", False) else str(param.display_type(ctx)).strip("<>")  # a flag takes none
    return f"| {names} | {cell(kind)} | {shown} | {cell(getattr(param, 'help', None) or '')} |"


def _plain(value: Any) -> str:
    return str(getattr(value, "value", value)).replace("`", "'")
