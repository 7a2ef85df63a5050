"""SOURCE_DATE_EPOCH (reproducible-builds.org): the one time every output of a build is stamped with.

Read here and nowhere else, with one rule for every command: the variable when it is set (a value that is not a
whole number of seconds is refused, with the same message everywhere); else the catalog's last taxonomy commit;
else the end of its newest successful run; else 1970-01-01. None of these is a wall-clock time of the command
itself, so the same inputs stamp the same bytes.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from registry.errors import RegistryError

ENV = "SOURCE_DATE_EPOCH"
UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_environment() -> int | None:
    """The variable's seconds, None when it is unset."""
    raw = os.environ.get(ENV)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) > 253402300799:  # after 9999-12-31: no datetime
        raise RegistryError(f"{ENV}={raw!r} is not a whole number of seconds since 1970",
                            hint=f"unset it (the taxonomy's last commit time is used), or set e.g. "
                                 f"{ENV}=$(git log -1 --format=%ct)")
    return int(raw)


def pin(seconds: int | None) -> None:
    """Set the variable for this process (and the tools it starts) unless the user set it: a build pins it to the
    taxonomy's last commit, so every stage stamps the same time."""
    if ENV not in os.environ and seconds is not None:
        os.environ[ENV] = str(seconds)


def stamp(con: Any | None = None) -> tuple[datetime, str]:
    """(time, where it came from), by the rule above; `con` is an open catalog, or None outside of one."""
    seconds = from_environment()
    if seconds is not None:
        return datetime.fromtimestamp(seconds, UTC), ENV
    if con is not None:
        [(commit,)] = con.execute("SELECT epoch(max(committed_at)) FROM taxonomy_commit").fetchall()
        if commit is not None:
            return datetime.fromtimestamp(int(commit), UTC), f"the taxonomy's last commit time ({ENV} unset)"
        [(ended,)] = con.execute("SELECT epoch(max(ended_at)) FROM run WHERE status = 'succeeded'").fetchall()
        if ended is not None:
            return datetime.fromtimestamp(int(ended), UTC), (
                f"the newest catalog run's end, a wall-clock time ({ENV} unset and the taxonomy is not a git "
                f"repository): set {ENV} for reproducible timestamps")
    return UNIX_EPOCH, f"the epoch 1970-01-01 (no {ENV}, commit or run time)"
