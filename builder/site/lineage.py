"""The lineage diagram of one contribution, as Mermaid source: document -> chunks -> seeds -> samples ->
datasets -> releases -> models.

Labels hold contributed text (paths, folder names), so they keep only a safe alphabet: a label can never
close its quotes, start a directive, or carry markup. The page HTML-escapes the whole source as well.
"""

from __future__ import annotations

import re
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9 _./@:+-]")
MAX_NODES = 6  # per column: a diagram is a summary, the page's tables have the rest


def label(text: str, limit: int = 48) -> str:
    clean = _UNSAFE.sub("_", text)
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def diagram(contribution: dict[str, Any]) -> str:
    """Mermaid `flowchart LR` from a contribution page's context (documents, counts, datasets...)."""
    lines = ["flowchart LR"]
    seeds, samples = contribution["seed_count"], contribution["sample_count"]
    lines.append(f'  leaf["{label(contribution["contribution_id"])}"]')
    lines.append(f'  seeds["{seeds} seed examples"]')
    lines.append("  leaf --> seeds")
    for i, doc in enumerate(contribution["documents"][:MAX_NODES]):
        lines.append(f'  doc{i}["document {label(doc["path"])} @{doc["doc_sha256"][:12]}"]')
        lines.append(f'  chunks{i}["{doc["chunks_used"]} chunks"]')
        lines.append(f"  doc{i} --> chunks{i} --> seeds")
    lines.append(f'  samples["{samples} samples"]')
    lines.append("  seeds --> samples")
    names = sorted({f"{d['name']}/{d['split']}" for d in contribution["datasets"]})
    for i, name in enumerate(names[:MAX_NODES]):
        lines.append(f'  ds{i}["dataset {label(name)}"]')
        lines.append(f"  samples --> ds{i}")
    for i, release in enumerate(contribution["releases"][:MAX_NODES]):
        lines.append(f'  rel{i}["release {label(release)}"]')
        lines.extend(f"  ds{j} --> rel{i}" for j in range(min(len(names), MAX_NODES)))
    for i, model in enumerate(contribution["models"][:MAX_NODES]):
        lines.append(f'  model{i}["model {label(model["kind"])} {model["artifact_id"][:12]}"]')
        lines.extend(f"  ds{j} --> model{i}" for j in range(min(len(names), MAX_NODES)))
    return "\n".join(lines) + "\n"
