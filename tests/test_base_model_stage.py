"""The demo base model stage reruns only when the text its tokenizer reads changed (issue 16.2), and its stage board
line says what the new text did to the tokenizer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from builder import settings
from builder.pipeline import StageReport, run_build
from builder.stage import BuildOptions
from builder.stages import base_model, dataset, generate, index
from tests.conftest import EXAMPLE_TAXONOMY

STAGES = (index.STAGE, generate.STAGE, dataset.STAGE, base_model.STAGE)
LEAF = "compositional_skills/linguistics/antonyms/qna.yaml"


def build(taxonomy: Path, folder: Path) -> dict[str, StageReport]:
    options = BuildOptions(taxonomy, folder, site=False)
    return {r.name: r for r in run_build(options, settings.load().validation(), lambda _: None, STAGES)}


@pytest.mark.slow  # two real demo models
def test_a_new_version_with_the_same_text_keeps_the_base_model(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    taxonomy, folder = Path(shutil.copytree(EXAMPLE_TAXONOMY, tmp_path / "taxonomy")), tmp_path / "build"
    first = build(taxonomy, folder)
    assert first["base model"].status == "ran" and "tokenizer trained on the taxonomy's text" in \
        first["base model"].detail
    leaf = taxonomy / LEAF
    leaf.write_text(leaf.read_text(encoding="utf-8") + "# a comment: a new version, the same text\n",
                    encoding="utf-8")
    commented = build(taxonomy, folder)
    assert commented["validate+index"].status == "ran" and commented["base model"].status == "skipped"
    leaf.write_text(leaf.read_text(encoding="utf-8").replace("3. Miserly", "3. Mean"), encoding="utf-8")
    edited = build(taxonomy, folder)["base model"]
    assert edited.status == "ran"
    assert "made again (its text, takedowns or seed changed): " in edited.detail
    assert "token ids differ from the previous tokenizer" in edited.detail or "came out the same" in edited.detail
