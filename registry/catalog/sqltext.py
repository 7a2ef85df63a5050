"""Quoting names and values into DuckDB SQL text, for the statements that cannot take parameters (DDL, COPY)."""


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
