"""The stages of `taxreg build`, in order: one module each, exporting `STAGE` (see `builder.stage`).

Adding a stage is one module here plus one line in STAGES.
"""

from __future__ import annotations

from builder.stage import Stage
from builder.stages import base_model, dataset, evaluate, export, generate, index, release, site, train

STAGES: tuple[Stage, ...] = (
    index.STAGE,
    generate.STAGE,
    dataset.STAGE,
    base_model.STAGE,
    train.STAGE,
    export.STAGE,
    evaluate.STAGE,
    release.STAGE,
    site.STAGE,
)
