"""A release's training-data disclosures (EU AI Act summary, AB 2013, ATTRIBUTION.md, SLSA provenance): every
template section, facts checked against the catalog, the disclosure.complete gate, `release verify` against a
tampered subject and a stripped or re-signed envelope, and two cuts from the same inputs giving the same bytes.
Real data-only builds of the example taxonomy, a real tokenizer, a real teacher over HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from builder import settings
from builder.cli import app
from builder.dataset_card import validate_croissant
from builder.datasets import DatasetOptions, build_dataset
from builder.generators.run import GenerateOptions, generate
from builder.release.disclosures.provenance import _DeterministicSigner
from builder.release.verify import verify_folder
from builder.settings import Disclosure, SettingsError
from registry.catalog.connection import open_catalog
from registry.catalog.policy import GateFailed
from registry.catalog.releases import take_down, takedown_impact
from registry.release.canonical import canonical_bytes
from registry.release.manifest import read_manifest
from registry.release.sums import format_sums, parse_sums
from tests.conftest import EXAMPLE_TAXONOMY
from tests.releasing import build_data, cut, make_key, rows
from tests.test_teacher import MODEL, FakeTeacher, teacher

runner = CliRunner()
COMPLETE = Disclosure("Example Provider GmbH", "ai@example.org", "none: established in the Union", True)
DISCLOSURES = ("disclosures/eu-training-content-summary.md", "disclosures/eu-training-content-summary.json",
               "disclosures/ab2013.md", "ATTRIBUTION.md", "provenance.intoto.jsonl")
HEADINGS = [
    "## 1. General information", "### 1.1. Provider identification", "### 1.2. Model identification",
    "### 1.3. Modalities, overall training data size and other characteristics",
    "## 2. List of data sources", "### 2.1. Publicly available datasets",
    "### 2.2. Private non-publicly available datasets obtained from third parties",
    "#### 2.2.1. Datasets commercially licensed by rightsholders or their representatives",
    "#### 2.2.2. Private datasets obtained from other third parties",
    "### 2.3. Data crawled and scraped from online sources", "### 2.4. User data", "### 2.5. Synthetic data",
    "### 2.6. Other sources of data", "## 3. Data processing aspects",
    "### 3.1. Respect of reservation of rights from text and data mining exception or limitation",
    "### 3.2. Removal of illegal content"]


def train_tokenizer(build: Path, out: Path) -> Path:
    """A byte-level BPE trained on the build's training split (what a model's tokenizer.json is)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    texts = [m["content"] for line in (build / "datasets/default/train.jsonl").read_text().splitlines()
             for m in json.loads(line)["messages"]]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    tokenizer.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400,
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.save(str(out))
    return out


def give_tokenizer(build: Path, tokenizer: Path) -> None:
    """The build's base model tokenizer, which a data-only release counts its tokens with."""
    (build / "model/base").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer, build / "model/base/tokenizer.json")


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("disclosures")
    build = build_data(root / "build")
    tokenizer = train_tokenizer(build, root / "tokenizer.json")
    give_tokenizer(build, tokenizer)
    keys = {name: make_key(root, name) for name in ("first", "second")}
    return {"root": root, "build": build, "tokenizer": tokenizer, "plain": cut(build, "1.0.0"),
            "signed": cut(build, "1.0.0-signed", sign_key=keys["first"][0]),
            "complete": cut(build, "1.0.0-complete", disclosure=replace(COMPLETE, required=True)),
            "first": keys["first"][0], "second": keys["second"][0], "second.pub": keys["second"][1]}


def summary(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((folder / "disclosures/eu-training-content-summary.json").read_text())
    return loaded


def item(document: dict[str, Any], number: str, key: str) -> dict[str, Any]:
    def walk(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [x for s in sections for x in [*({**i, "number": s["number"]} for i in s["items"]),
                                               *walk(s["sections"])]]
    [found] = [i for i in walk(document["sections"]) if i["number"] == number and i["key"] == key]
    return found


def copy(released: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(released[name], tmp_path / name))


def reseal(folder: Path, edited: str) -> None:
    """SHA256SUMS and the manifest updated for an edited file, as a careful forger would."""
    sha = hashlib.sha256((folder / edited).read_bytes()).hexdigest()
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["path"] == edited:
            entry["sha256"], entry["size"] = sha, (folder / edited).stat().st_size
    (folder / "manifest.json").write_bytes(canonical_bytes(manifest))
    sums = parse_sums((folder / "SHA256SUMS").read_text())
    sums[edited] = sha
    sums["manifest.json"] = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    (folder / "SHA256SUMS").write_text(format_sums(sorted(sums.items(), key=lambda s: s[0].encode())))


def problems(folder: Path, key: Path | None = None) -> set[tuple[str, str]]:
    return {(d.path, d.problem) for d in verify_folder(folder, key)[1]}


# --- what a release ships ---------------------------------------------------------------------------------


def test_every_disclosure_ships_listed_hashed_and_verified(released: dict[str, Path]) -> None:
    for name in ("plain", "signed"):
        folder = released[name]
        manifest, _ = read_manifest(folder)
        sums = parse_sums((folder / "SHA256SUMS").read_text())
        for path in DISCLOSURES:
            assert manifest.file(path) is not None and sums[path] == manifest.file(path).sha256  # type: ignore[union-attr]
        assert verify_folder(folder)[1] == []
        result = runner.invoke(app, ["release", "verify", str(folder)])
        assert result.exit_code == 0, result.output


def test_the_eu_summary_has_every_section_of_the_template_in_order(released: dict[str, Path]) -> None:
    md = (released["plain"] / "disclosures/eu-training-content-summary.md").read_text()
    assert [line for line in md.splitlines() if line.startswith("##")] == HEADINGS
    document = summary(released["plain"])

    def numbers(sections: list[dict[str, Any]]) -> list[str]:
        return [n for s in sections for n in (s["number"], *numbers(s["sections"]))]
    assert numbers(document["sections"]) == [h.split()[1].rstrip(".") for h in HEADINGS]
    assert "2025-07-24" in document["template"] and document["release"] == "1.0.0"


def test_the_eu_summary_facts_are_the_catalogs(released: dict[str, Path]) -> None:
    from tokenizers import Tokenizer

    build, folder = released["build"], released["plain"]
    facts = summary(folder)["facts"]
    train = [json.loads(line) for line in (folder / "data/train.jsonl").read_text().splitlines()]
    texts = [m["content"] for r in train for m in r["messages"]]
    tokens = sum(len(e.ids) for e in Tokenizer.from_file(str(released["tokenizer"])).encode_batch(
        texts, add_special_tokens=False))
    [(members,)] = rows(build, """SELECT sum(m.copies) FROM dataset_member m JOIN dataset d USING (dataset_id)
                                  WHERE d.split = 'train' AND d.format = 'jsonl'""")
    split = facts["training_split"]
    assert split["rows"] == len(train) == members and split["tokens"] == tokens > split["words"] > 0
    assert split["size_bin"] == "Less than 1 billion tokens"
    assert split["tokenizer"].endswith(hashlib.sha256(released["tokenizer"].read_bytes()).hexdigest() + ")")
    md = (folder / "disclosures/eu-training-content-summary.md").read_text()
    assert f"Less than 1 billion tokens ({tokens} tokens of the training split" in md
    # sources: every document the shipped samples derive from, repo@commit#path with its sha256
    documents = rows(build, """
        SELECT DISTINCT d.repo_url || '@' || d.repo_commit || '#' || d.path, d.doc_sha256 FROM sample_lineage l
        JOIN source_document d USING (doc_sha256) JOIN dataset_member m USING (sample_id) ORDER BY 1""")
    assert sorted((d["uri"], d["doc_sha256"]) for d in facts["documents"]) == documents and documents
    assert facts["domains"] == [{"name": "github.com", "byte_size": sum(d["byte_size"] for d in facts["documents"]),
                                 "share": 1.0}]
    assert "- github.com: 100.0%" in md
    assert facts["synthetic"] == [{"generator": "seed", "teacher": None, "revision": None, "license": None,
                                   "output_terms": None, "judge": None, "samples": facts["samples"]["total"]}]
    [(latest,)] = rows(build, "SELECT max(committed_at)::DATE::VARCHAR FROM taxonomy_commit t "
                              "JOIN contribution_version v ON v.commit_sha = t.commit_sha")
    assert facts["collection"]["latest"] == latest and item(summary(folder), "1.3", "latest_collection")["complete"]
    assert facts["contributors"] == rows(build, "SELECT count(DISTINCT created_by) FROM contribution")[0][0]


def test_provider_facts_are_asked_for_and_the_gate_warns_or_fails(released: dict[str, Path]) -> None:
    plain = summary(released["plain"])
    asked = ["1.1 provider", "1.1 representative", "3.1 code_of_practice"]
    assert plain["to_complete"] == asked and plain["complete"] is False
    assert item(plain, "1.1", "provider")["value"] == "[to be completed by the provider]"
    manifest, _ = read_manifest(released["plain"])
    [gate] = [p for p in manifest.policy if p.rule == "disclosure.complete"]
    assert (gate.severity, gate.passed, gate.details["to_complete"]) == ("warning", True, asked)  # warns, no block
    cli = runner.invoke(app, ["release", "cut", "1.0.2", "--no-model", "--build-dir", str(released["build"])])
    assert cli.exit_code == 0 and "1.1 provider, 1.1 representative, 3.1 code_of_practice" in cli.output
    with pytest.raises(GateFailed, match=r"disclosure\.complete .*1\.1 provider"):
        cut(released["build"], "1.0.1", disclosure=Disclosure(required=True))
    assert not (released["build"] / "releases/1.0.1").exists()
    complete = summary(released["complete"])
    assert complete["complete"] is True and complete["to_complete"] == []
    assert item(complete, "1.1", "provider")["value"] == "Example Provider GmbH, ai@example.org"
    assert item(complete, "3.1", "code_of_practice")["value"] == "Yes."
    text = (released["complete"] / "disclosures/eu-training-content-summary.md").read_text()
    assert "to be completed" not in text.split("\n", 3)[3]  # only the preamble says what the marker is
    assert [p.passed for p in read_manifest(released["complete"])[0].policy if p.rule == "disclosure.complete"] \
        == [True]


def test_provider_settings_come_from_taxreg_toml(tmp_path: Path) -> None:
    path = tmp_path / "taxreg.toml"
    path.write_text('[provider]\nname = "Example"\ncontact = "ai@example.org"\nrepresentative = "none"\n'
                    'code_of_practice = false\n[release]\nrequire_complete_disclosure = true\n'
                    '[lineage]\nurl = "http://127.0.0.1:5000"\nnamespace = "ci"\n')
    loaded = settings.load(path)
    assert loaded.disclosure == Disclosure("Example", "ai@example.org", "none", False, True)
    assert (loaded.lineage.url, loaded.lineage.namespace) == ("http://127.0.0.1:5000", "ci")
    path.write_text('[provider]\nname = ""\n')
    with pytest.raises(SettingsError, match=r"\[provider\] name = '' is not a non-empty string"):
        settings.load(path)
    path.write_text('[provider]\nemail = "x"\n')
    with pytest.raises(SettingsError, match=r"unknown setting in \[provider\]: email"):
        settings.load(path)


def test_attribution_credits_every_source_as_its_attribution_txt_writes_it(released: dict[str, Path]) -> None:
    text = (released["plain"] / "ATTRIBUTION.md").read_text()
    credited = rows(released["build"], """
        SELECT DISTINCT a.title, a.creators, a.link, a.revision, a.license_raw, a.license_spdx FROM attribution a
        JOIN contribution_attribution ca USING (contribution_id, attribution_sha256)
        JOIN contribution c ON c.contribution_id = ca.contribution_id AND c.current_version_id = ca.version_id""")
    assert any(str(r[5]).startswith("CC-BY") for r in credited)
    for title, creators, link, revision, raw, spdx in credited:
        section = text.split(f"## {spdx}\n", 1)[1].split("\n## ", 1)[0]
        line = next(line for line in section.splitlines() if f"**{title}**" in line)
        assert f"by {creators}" in line and f"license: {raw}" in line and f"revision {revision or 'N/A'}" in line
        if link:
            assert f"<{link}>" in line
    assert "License text: <https://creativecommons.org/licenses/by/4.0/legalcode>" in text


def test_ab2013_answers_its_twelve_items_in_order(released: dict[str, Path]) -> None:
    text = (released["plain"] / "disclosures/ab2013.md").read_text()
    numbers = [int(m) for m in re.findall(r"^## (\d+)\. ", text, re.MULTILINE)]
    assert numbers == list(range(1, 13))
    manifest, _ = read_manifest(released["plain"])
    assert f"{manifest.samples['total']} samples" in text and "## 12. Whether the system used" in text


def test_croissant_has_rai_fields_and_per_record_lineage_and_still_validates(released: dict[str, Path]) -> None:
    import mlcroissant as mlc
    import pyarrow.parquet as pq

    path = released["plain"] / "data/croissant.json"
    validate_croissant(path)
    croissant = json.loads(path.read_text())
    assert croissant["rai:hasSyntheticData"] is False
    assert "rai:dataSocialImpact" in croissant and "documents pinned" in croissant["rai:dataCollection"]
    [train] = [r for r in croissant["recordSet"] if r["name"] == "train"]
    assert [f["name"] for f in train["field"]] == ["id", "kind", "contribution", "document", "generator"]
    records = {r["train/id"].decode(): r for r in mlc.Dataset(jsonld=path).records("train")}
    assert len(records) == pq.read_table(released["plain"] / "data/train.parquet").num_rows
    lineage = rows(released["build"], """
        SELECT l.sample_id, string_agg(DISTINCT l.contribution_id, ', '),
               string_agg(DISTINCT d.repo_url || '@' || d.repo_commit || '#' || d.path, ', ')
        FROM sample_lineage l LEFT JOIN source_document d USING (doc_sha256) GROUP BY 1""")
    checked = 0
    for sample_id, contribution, document in lineage:
        if str(sample_id) in records:
            record = records[str(sample_id)]
            assert record["train/contribution"].decode() == contribution
            assert (record["train/document"] or b"").decode() == (document or "")
            assert record["train/generator"].decode() == "seed"
            checked += 1
    assert checked == len(records)


# --- provenance -------------------------------------------------------------------------------------------


def statement_of(folder: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    entry = json.loads((folder / "provenance.intoto.jsonl").read_text())
    if "payloadType" in entry:
        return json.loads(base64.b64decode(entry["payload"])), entry
    return entry, None


def test_the_provenance_is_an_slsa_statement_of_every_file_and_input(released: dict[str, Path]) -> None:
    from google.protobuf import json_format
    from in_toto_attestation.v1 import statement_pb2
    from in_toto_attestation.v1.statement import Statement

    folder, build = released["plain"], released["build"]
    statement, envelope = statement_of(folder)
    assert envelope is None
    Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement())).validate()
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    manifest, _ = read_manifest(folder)
    assert {s["name"]: s["digest"]["sha256"] for s in statement["subject"]} == {
        f.path: f.sha256 for f in manifest.files if f.path not in ("provenance.intoto.jsonl", "release.pub.pem")}
    predicate = statement["predicate"]
    external = predicate["buildDefinition"]["externalParameters"]
    assert external["taxonomy_commit"] == manifest.inputs["taxonomy_commit"]
    assert external["command"] == ["taxreg", "release", "cut", "1.0.0", "--dataset", "default", "--no-model"]
    assert canonical_bytes(external["config"]) == canonical_bytes(manifest.inputs["config"])
    dependencies = predicate["buildDefinition"]["resolvedDependencies"]
    documents = {d["uri"]: d["digest"]["sha256"] for d in dependencies if d.get("annotations", {}).get("role")
                 == "document"}
    assert sorted(documents.items()) == rows(build, """
        SELECT DISTINCT d.repo_url || '@' || d.repo_commit || '#' || d.path, d.doc_sha256 FROM sample_lineage l
        JOIN source_document d USING (doc_sha256) JOIN dataset_member m USING (sample_id) ORDER BY 1""")
    builder = [d for d in dependencies if d.get("annotations", {}).get("role") == "builder"]
    assert [d["uri"] for d in builder] == [f"pkg:pypi/taxonomy-registry@{manifest.builder_version}"]
    assert any(d.get("uri", "").startswith("pkg:pypi/duckdb@") for d in dependencies)
    run = predicate["runDetails"]
    assert run["builder"]["id"] == manifest.inputs["provenance"]["builder_id"]
    assert run["metadata"]["invocationId"] == manifest.inputs["provenance"]["invocation_id"]


def test_a_signed_provenance_is_a_dsse_envelope_the_release_key_verifies(released: dict[str, Path]) -> None:
    from securesystemslib.dsse import Envelope

    statement, envelope = statement_of(released["signed"])
    assert envelope is not None and envelope["payloadType"] == "application/vnd.in-toto+json"
    key = _DeterministicSigner.load(released["first"]).public_key
    Envelope.from_dict(dict(envelope)).verify([key], 1)
    assert statement["predicate"]["buildDefinition"]["externalParameters"]["command"][-2:] == ["--sign", "KEY"]


def test_verify_catches_a_tampered_subject(released: dict[str, Path], tmp_path: Path) -> None:
    folder = copy(released, "plain", tmp_path)
    path = folder / "provenance.intoto.jsonl"
    statement = json.loads(path.read_text())
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    path.write_bytes(canonical_bytes(statement) + b"\n")
    reseal(folder, "provenance.intoto.jsonl")  # SHA256SUMS and the manifest agree with the forged file
    assert problems(folder) == {(statement["subject"][0]["name"], "provenance")}
    result = runner.invoke(app, ["release", "verify", str(folder)])
    assert result.exit_code == 1 and "the provenance names sha256 0000" in result.stdout


def test_verify_catches_a_file_swapped_with_its_hashes_but_not_its_provenance(released: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    folder = copy(released, "plain", tmp_path)
    (folder / "data/README.md").write_text("a different card\n")
    reseal(folder, "data/README.md")
    assert problems(folder) == {("data/README.md", "provenance")}


def test_verify_catches_a_stripped_envelope(released: dict[str, Path], tmp_path: Path) -> None:
    folder = copy(released, "signed", tmp_path)
    statement, _ = statement_of(folder)
    (folder / "provenance.intoto.jsonl").write_bytes(canonical_bytes(statement) + b"\n")
    reseal(folder, "provenance.intoto.jsonl")
    assert ("provenance.intoto.jsonl", "signature") in problems(folder)


def test_verify_catches_an_envelope_resigned_with_another_key(released: dict[str, Path], tmp_path: Path) -> None:
    from securesystemslib.dsse import Envelope

    folder = copy(released, "signed", tmp_path)
    statement, _ = statement_of(folder)
    statement["subject"][0]["digest"]["sha256"] = "1" * 64  # what a forger would want to say
    forged = Envelope(canonical_bytes(statement), "application/vnd.in-toto+json", {})
    forged.sign(_DeterministicSigner.load(released["second"]))
    (folder / "provenance.intoto.jsonl").write_bytes(canonical_bytes(forged.to_dict()) + b"\n")
    reseal(folder, "provenance.intoto.jsonl")
    found = {(d.path, d.problem): d.detail for d in verify_folder(folder, released["root"] / "first.pub")[1]}
    assert ("provenance.intoto.jsonl", "signature") in found or ("release.sig", "signature") in found
    assert (statement["subject"][0]["name"], "provenance") in found
    # the release.sig of model-signing aside, the envelope itself is refused with the release key
    from builder.release.verify import _envelope_problem

    pinned = released["root"] / "first.pub"
    assert "does not verify" in str(_envelope_problem(folder, read_manifest(folder)[0], pinned))
    assert "does not verify" in str(_envelope_problem(folder, read_manifest(folder)[0], None))  # the shipped key
    assert _envelope_problem(released["signed"], read_manifest(released["signed"])[0], pinned) is None


# --- reproducible, synthetic data, takedowns ----------------------------------------------------------------


@pytest.fixture(scope="module")
def second(released: dict[str, Path]) -> Path:
    """The one extra data-only build of this module: the same inputs in another folder."""
    build = build_data(released["root"] / "second")
    give_tokenizer(build, released["tokenizer"])
    return build


def test_two_cuts_from_the_same_inputs_give_the_same_disclosures(released: dict[str, Path], second: Path) -> None:
    # the same cuts in the same order (each release's audit copy holds the catalog as the cut before left it)
    for name, version, key in (("plain", "1.0.0", None), ("signed", "1.0.0-signed", released["first"])):
        a, b = released[name], cut(second, version, sign_key=key)
        for path in DISCLOSURES:
            assert (a / path).read_bytes() == (b / path).read_bytes(), path
        assert (a / "SHA256SUMS").read_bytes() == (b / "SHA256SUMS").read_bytes()
        assert (a / "manifest.json").read_bytes() == (b / "manifest.json").read_bytes()


def test_teachers_and_takedowns_are_disclosed_from_the_catalog(released: dict[str, Path], second: Path) -> None:
    fake = FakeTeacher()
    fake.thread.start()
    try:
        generate(EXAMPLE_TAXONOMY, second / "catalog.duckdb", GenerateOptions("teacher", teacher=teacher(
            fake, license="Apache-2.0", terms="Apache-2.0")))
    finally:
        fake.server.shutdown()
        fake.server.server_close()
    [(doc,)] = rows(second, "SELECT doc_sha256 FROM source_document WHERE path LIKE '%printing_press%'")
    with open_catalog(second / "catalog.duckdb") as con:
        from datetime import UTC, datetime

        take_down(con, takedown_impact(con, doc), "the rightsholder asked", None, datetime.now(UTC))
    build_dataset(second / "catalog.duckdb", second / "datasets", DatasetOptions())
    folder = cut(second, "3.0.0", license="CC-BY-4.0")
    facts = summary(folder)["facts"]
    shipped = ", ".join(f"'{d['dataset_id']}'" for d in read_manifest(folder)[0].inputs["datasets"])
    taught = rows(second, f"""
        SELECT r.teacher_model_ref, count(DISTINCT rs.sample_id) FROM run_sample rs JOIN run r USING (run_id)
        WHERE rs.kept AND r.teacher_model_ref IS NOT NULL AND rs.sample_id IN (
            SELECT sample_id FROM dataset_member WHERE dataset_id IN ({shipped})) GROUP BY 1""")
    teachers = [(g["teacher"], g["samples"]) for g in facts["synthetic"] if g["teacher"]]
    assert teachers == taught and teachers[0][0] == MODEL
    text = (folder / "disclosures/eu-training-content-summary.md").read_text()
    assert f"- {MODEL}: {teachers[0][1]} samples; license Apache-2.0" in text
    assert "Was synthetic AI-generated data created by the provider or on their behalf to train the model?** Yes" \
        in text
    [(excluded,)] = rows(second, f"""SELECT count(DISTINCT l.sample_id) FROM sample_lineage l JOIN sample s
                                     USING (sample_id) WHERE s.kept AND l.doc_sha256 = '{doc}'""")
    assert facts["takedowns"] == [{"subject": doc, "kind": "document", "reason": "the rightsholder asked",
                                   "samples_excluded": excluded}] and excluded > 0
    assert doc not in {d["doc_sha256"] for d in facts["documents"]}
    assert f"document {doc} (the rightsholder asked): {excluded} samples left out" in text
    croissant = json.loads((folder / "data/croissant.json").read_text())
    assert croissant["rai:hasSyntheticData"] is True and MODEL in croissant["rai:machineAnnotationTools"]
    validate_croissant(folder / "data/croissant.json")
    statement, _ = statement_of(folder)
    roles = [d["annotations"]["role"] for d in statement["predicate"]["buildDefinition"]["resolvedDependencies"]]
    assert "teacher" in roles and verify_folder(folder)[1] == []
