"""`taxreg site`: build the whole site into a folder beside the output, then swap it into place.

A failed build (a bad catalog, a warning under --strict, a swap the filesystem refuses) leaves the previous
site as it was and removes the new one. The previous site also serves as the cache: pages whose inputs did
not change are hard-linked from it (render.py). The folders beside the site are named with the process id
(`registry.folders`: `.site-new-<pid>-<random>`, `.site-old-<pid>-<random>`), so a later build removes those a
killed run left.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from builder.layout import DEFAULT
from registry import folders
from registry.errors import RegistryError

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "mkdocs.yml"


@dataclass(frozen=True, slots=True)
class SiteOptions:
    catalog: Path
    out: Path
    taxonomy: Path | None = None
    vendor: Path = DEFAULT.vendor
    incremental: bool = True  # reuse unchanged pages of the site in `out`
    audit: bool = True  # False: a quicker preview that keeps the previous site's audit files as they were
    wait: float = 0.0  # seconds to wait while another process writes the catalog


@dataclass(frozen=True, slots=True)
class SiteOutcome:
    out: Path
    seconds: float
    pages_rendered: int
    pages_reused: int
    search_bytes: int
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def build_site(options: SiteOptions) -> SiteOutcome:
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")  # material 9's end-of-life banner
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    from builder.site import hook
    from builder.site.render import MANIFEST

    if not options.catalog.is_file():
        raise RegistryError(f"no catalog at {options.catalog}", hint="run `taxreg index` first, or pass --catalog")
    readable(options.catalog, options.wait)  # said plainly here, not as a hook's error inside mkdocs
    started = time.perf_counter()
    out = options.out.resolve()
    previous = out if options.incremental and (out / MANIFEST).is_file() else None
    with folders.building(out) as staging:
        try:
            config = load_config(str(CONFIG), site_dir=str(staging), strict=True)
            config.extra["taxreg"] = {"catalog": str(options.catalog.resolve()),
                                      "vendor": str(options.vendor.resolve()),
                                      "taxonomy": str(options.taxonomy.resolve()) if options.taxonomy else "",
                                      "previous": str(previous) if previous else "", "audit": options.audit}
            build(config)
        except MkDocsException as exc:
            raise _cause(exc) from exc  # --debug shows the whole chain
        swapped = time.perf_counter()
        _swap(staging, out)
    st = hook.last_state()
    assert st is not None and st.render is not None
    st.timings["swap"] = time.perf_counter() - swapped
    return SiteOutcome(out, time.perf_counter() - started, st.render.rendered, st.render.reused, st.search_bytes,
                       dict(st.timings), list(st.notes))


def readable(catalog: Path, wait: float) -> None:
    """The catalog opens read-only, at once or within `wait` seconds: DuckDB lets no reader in while another process
    holds it read-write (a `taxreg index` outside this build folder's lock, a script)."""
    from registry.catalog.connection import open_read_only_waiting

    open_read_only_waiting(catalog, wait).close()


def _cause(exc: Exception) -> RegistryError:
    """What made mkdocs abort, in taxreg's words: the RegistryError a hook raised (mkdocs reports 'Aborted with a
    BuildError!' and logs the cause), else the build error's own message."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, RegistryError):
            return seen
        seen = seen.__cause__ or seen.__context__
    reason = exc.__context__ if isinstance(exc.__context__, Exception) else exc
    return RegistryError(f"the site did not build: {reason}", hint="the previous site is unchanged; run "
                         "`taxreg --debug site` for details")


def remove_stale_staging(out: Path) -> list[Path]:
    """The `.<out>-new-*` / `.<out>-old-*` folders beside `out` that a killed or failed run left."""
    return folders.remove_stale_temps(out)


def _swap(staging: Path, out: Path) -> None:
    """The old tree (tens of thousands of files) is deleted by a background `rm`, not waited for. If a rename is
    refused, the previous site stays (or is put back) and a RegistryError says why; the caller removes `staging`."""
    try:
        folders.swap_into_place((staging, out), background=True)
    except OSError as exc:
        raise RegistryError(f"the site was built but could not be put in place at {out}: {exc.strerror or exc}",
                            hint=f"the previous site is unchanged and the new one was removed; make {out} and "
                            f"{out.parent} writable and movable (not immutable: see `lsattr -d {out}`; not a "
                            "mount point) and build again") from None
