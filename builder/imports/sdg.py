"""`taxreg import-sdg`: InstructLab SDG output becomes one run of samples, with the lineage InstructLab lost.

Every record is placed, in this order, and each edge says how it was found (Edge.method):
1. its leaf: `leaf_node_path` in the record or its metadata, else the node_datasets file name, else a record
   of the same import with the same `id` and answer (`record_id`), else the document its `sdg_document`
   comes from (`document_text_match` / `fuzzy_text_match`);
2. its seeds: skills by `seed_question`/`seed_response` (`seed_text_match`); knowledge through the teacher
   output that holds its Q/A in generated_*/checkpoints, whose in-context seeds are matched by text
   (`generated_output_match`);
3. its document chunks: where `sdg_document` lies in the leaf's documents, chunked as `taxreg generate` does;
4. a record still without a leaf (the legacy messages_* format) takes the lineage of the record holding the
   same conversation (`message_text_match`).
A record that cannot be placed is kept as a sample with drop_reason `unplaced` and reported, never dropped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from builder.generators.base import LoadedDocument
from builder.generators.run import load_documents
from registry import gitrepo
from registry.catalog.connection import open_catalog
from registry.catalog.generation import (
    DocumentRow,
    LeafInput,
    RunInfo,
    new_run_id,
    record_failed_run,
    write_run,
)
from registry.chunking import ChunkingConfig
from registry.config import documents_root
from registry.errors import RegistryError
from registry.samples import Edge, FilterConfig, FilterStats, Sample, Verdict, apply_filters
from registry.sdg_import import DocumentText as DocText
from registry.sdg_import import (
    GeneratedRow,
    LeafResolver,
    SdgRecord,
    Span,
    leaf_names_of_file,
    question_then_answer,
    read_sdg,
    word_key,
)

UNPLACED = "unplaced"
REPORTED_UNPLACED = 200  # the run's stats list this many unplaced records; the command prints them all


@dataclass(frozen=True, slots=True)
class ImportOptions:
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    documents_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    run_id: str
    stats: dict[str, Any]
    unplaced: list[tuple[str, str]]  # (file:line, why)
    warnings: list[str]


@dataclass(slots=True)
class ImportStats(FilterStats):
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {**FilterStats.as_dict(self), **self.extra}


def import_sdg(source: Path, taxonomy: Path, catalog: Path, options: ImportOptions) -> ImportOutcome:
    sdg = read_sdg(source)  # format errors stop here, before the catalog is touched
    with open_catalog(catalog) as con:
        view = CatalogView.load(con)
        if not view.kinds:
            raise RegistryError("the catalog has no contributions to place the records on",
                                hint="run `taxreg index` first")
        params = {"source": str(source.resolve()), "taxonomy": str(taxonomy),
                  "files": [{"path": f.path, "kind": f.kind, "sha256": f.sha256, "records": f.records}
                            for f in sdg.files],
                  "chunk_unit": options.chunking.unit, "chunk_size": options.chunking.max_size,
                  "max_words": options.filters.max_words, "min_answer_words": options.filters.min_answer_words}
        info = RunInfo("import", params, 0, None,
                       taxonomy_commit=gitrepo.head(taxonomy) if gitrepo.is_repository(taxonomy) else None,
                       stage="import")
        run_id, started = new_run_id(), datetime.now(UTC)
        try:
            root = documents_root(taxonomy, options.documents_dir)
            placer = Placer(view, root, options.chunking, sdg.generated)
            placements = placer.place(sdg.records)
            verdicts, stats, unplaced = _verdicts(sdg.records, placements, view.kinds, options.filters)
            stats.extra |= {"skipped_files": len(sdg.skipped), "warnings": placer.warnings[:REPORTED_UNPLACED]}
            chunker = f"{options.chunking.unit}:{options.chunking.max_size}"
            chunks = [(chunker, c) for d in placer.loaded.values() for c in d.chunks]
            write_run(con, run_id, info, started, chunks, verdicts, stats)
        except Exception as exc:
            record_failed_run(con, run_id, info, started, str(exc))
            raise
        return ImportOutcome(run_id, stats.as_dict(), unplaced, placer.warnings)


# ---------------------------------------------------------------------------------------------- catalog


@dataclass(frozen=True, slots=True)
class SeedEntry:
    seed_id: str
    version_id: str
    current: bool
    context: str  # word keys
    question: str
    answer: str


@dataclass(slots=True)
class CatalogView:
    """What placing needs from the catalog: every contribution (any status), its seeds and documents."""

    kinds: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    current: dict[str, str | None] = field(default_factory=dict)
    any_version: dict[str, str] = field(default_factory=dict)
    domains: dict[str, str | None] = field(default_factory=dict)  # knowledge: qna.yaml `domain`
    seeds: dict[str, list[SeedEntry]] = field(default_factory=dict)
    documents: dict[str, list[DocumentRow]] = field(default_factory=dict)

    @classmethod
    def load(cls, con: Any) -> CatalogView:
        view = cls()
        for cid, kind, status, current, domain in con.execute("""
                SELECT c.contribution_id, c.kind, c.status, c.current_version_id, cv.knowledge_domain
                FROM contribution c LEFT JOIN contribution_version cv
                  ON cv.contribution_id = c.contribution_id AND cv.version_id = c.current_version_id
                ORDER BY 1""").fetchall():
            view.kinds[cid], view.status[cid], view.current[cid], view.domains[cid] = kind, status, current, domain
        for cid, vid in con.execute("SELECT contribution_id, max(version_id) FROM contribution_version "
                                    "GROUP BY 1").fetchall():
            view.any_version[cid] = vid
        for seed_id, cid, vid, context, question, answer in con.execute("""
                SELECT seed_id, contribution_id, version_id, context, question, answer FROM seed_example
                ORDER BY contribution_id, version_id, ordinal""").fetchall():
            view.seeds.setdefault(cid, []).append(SeedEntry(
                seed_id, vid, vid == view.current.get(cid), word_key(context), word_key(question),
                word_key(answer)))
        by_leaf: dict[str, list[tuple[str, DocumentRow]]] = {}
        for cid, vid, sha, repo, commit, path in con.execute("""
                SELECT DISTINCT cs.contribution_id, cs.version_id, d.doc_sha256, d.repo_url, d.repo_commit, d.path
                FROM contribution_source cs JOIN source_document d
                  ON d.doc_sha256 = cs.doc_sha256 AND d.path = cs.path ORDER BY 1, 2, 6, 3""").fetchall():
            by_leaf.setdefault(cid, []).append((vid, DocumentRow(sha, repo, commit, path)))
        for cid, rows in by_leaf.items():  # the current version's documents, else those of any version
            current = [row for vid, row in rows if vid == view.current.get(cid)] or [row for _, row in rows]
            unique: dict[str, DocumentRow] = {}
            for row in current:
                unique.setdefault(row.doc_sha256, row)
            view.documents[cid] = list(unique.values())
        return view

    def version(self, cid: str) -> str | None:
        return self.current.get(cid) or self.any_version.get(cid)

    def find_seeds(self, cid: str, question: str | None, answer: str | None,
                   context: str | None = None) -> tuple[list[SeedEntry], str]:
        """Seeds with this text, the current version's first; a question alone must match one seed."""
        q, a, c = word_key(question), word_key(answer), word_key(context)
        entries = self.seeds.get(cid, [])
        if not q:
            return [], ""
        for current in (True, False):
            pool = [s for s in entries if s.current is current and s.question == q and (not c or s.context == c)]
            full = [s for s in pool if s.answer == a]
            if full:
                return _one_per_seed(full), "seed_text_match"
            if len({s.seed_id for s in pool}) == 1:
                return pool[:1], "seed_question_match"
        return [], ""


def _one_per_seed(entries: list[SeedEntry]) -> list[SeedEntry]:
    seen: dict[str, SeedEntry] = {}
    for entry in entries:
        seen.setdefault(entry.seed_id, entry)
    return list(seen.values())


# ---------------------------------------------------------------------------------------------- placing


@dataclass(slots=True)
class Placement:
    cid: str | None = None
    version_id: str | None = None
    leaf_method: str = ""
    edges: list[Edge] = field(default_factory=list)
    problem: str | None = None

    def lineage(self) -> list[Edge]:
        if self.cid is None:
            return []
        return [Edge("contribution", self.cid, "leaf", self.cid, self.version_id, None, self.leaf_method),
                *self.edges]


class Placer:
    def __init__(self, view: CatalogView, documents_root: Path, chunking: ChunkingConfig,
                 generated: list[GeneratedRow]) -> None:
        self.view = view
        self.resolver = LeafResolver(list(view.kinds))
        self.documents_root = documents_root
        self.chunking = chunking
        self.loaded: dict[str, LoadedDocument] = {}
        self.texts: dict[str, DocText] = {}
        self.leaf_docs: dict[str, list[LoadedDocument]] = {}
        self.spans: dict[tuple[str, str], tuple[LoadedDocument, Span] | None] = {}
        self.warnings: list[str] = []
        self.generated: dict[tuple[str, str], list[GeneratedRow]] = {}
        for row in generated:
            cid, problem = self.resolver.resolve([row.leaf])
            if cid is None:
                self.warnings.append(f"{row.where}: teacher output not used: {problem}")
                continue
            self.generated.setdefault((cid, word_key(row.document)), []).append(row)

    def place(self, records: list[SdgRecord]) -> list[Placement]:
        placements = [self._leaf(r) for r in records]
        self._leaf_by_record_id(records, placements)
        for record, placement in zip(records, placements, strict=True):
            if placement.cid is None:
                self._leaf_by_document(record, placement)
            if placement.cid is not None:
                placement.version_id = placement.version_id or self.view.version(placement.cid)
                self._seeds(record, placement)
                self._chunks(record, placement)
        self._by_messages(records, placements)
        self._inactive(placements)
        return placements

    def _inactive(self, placements: list[Placement]) -> None:
        for cid, n in sorted(Counter(p.cid for p in placements if p.cid).items()):
            status = self.view.status[cid]
            if status != "active":
                unversioned = "" if self.view.version(cid) else ": no version indexed, so no seed or chunk lineage"
                self.warnings.append(f"{n} record(s) placed on {cid}, which is {status} in the catalog (its samples "
                                     f"are not eligible for datasets){unversioned}")

    # leaves

    def _leaf(self, record: SdgRecord) -> Placement:
        placement = Placement()
        named = record.text_field("leaf_node_path")
        if named:
            placement.cid, placement.problem = self.resolver.resolve([named])
            placement.leaf_method = "leaf_node_path"
        if placement.cid is None and record.file_leaf:
            cid, problem = self.resolver.resolve(leaf_names_of_file(record.file_leaf))
            placement.cid, placement.leaf_method = cid, "file_name"
            placement.problem = placement.problem or problem
        return placement

    def _leaf_by_record_id(self, records: list[SdgRecord], placements: list[Placement]) -> None:
        """InstructLab keeps a record's `id` when it mixes node datasets into *_train_msgs_*."""
        leaves: dict[tuple[str, str], set[str]] = {}
        for record, placement in zip(records, placements, strict=True):
            if record.record_id and placement.cid:
                leaves.setdefault((record.record_id, word_key(record.answer)), set()).add(placement.cid)
        for record, placement in zip(records, placements, strict=True):
            if placement.cid is None and record.record_id:
                found = leaves.get((record.record_id, word_key(record.answer)), set())
                if len(found) == 1:
                    placement.cid, placement.leaf_method = next(iter(found)), "record_id"

    def _leaf_by_document(self, record: SdgRecord, placement: Placement) -> None:
        """A knowledge record without a leaf: the leaf whose document holds its `sdg_document`."""
        text = record.text_field("sdg_document")
        if text is None:
            return
        hits = [(cid, found[1]) for cid, kind in self.view.kinds.items()
                if kind == "knowledge" and (found := self._locate(cid, text)) is not None]
        exact = [h for h in hits if h[1].method == "document_text_match"]
        hits = exact or hits
        domain = record.text_field("domain")
        if len(hits) > 1 and domain:
            hits = [h for h in hits if self.view.domains.get(h[0]) == domain] or hits
        if len(hits) == 1:
            placement.cid, placement.leaf_method = hits[0][0], hits[0][1].method
        elif hits:
            placement.problem = ("its sdg_document lies in the documents of several leaves: "
                                 + ", ".join(cid for cid, _ in hits))
        else:
            placement.problem = placement.problem or "its sdg_document matches no document of any knowledge leaf"

    # seeds

    def _seeds(self, record: SdgRecord, placement: Placement) -> None:
        assert placement.cid is not None
        question = record.text_field("seed_question")
        if question is not None:
            found, method = self.view.find_seeds(placement.cid, question, record.text_field("seed_response"),
                                                 record.text_field("seed_context"))
            placement.edges.extend(Edge("seed", s.seed_id, "seed_example", placement.cid, s.version_id, None, method)
                                   for s in found)
            return
        document = record.text_field("sdg_document")
        if document is None:
            return
        outputs = [g for g in self.generated.get((placement.cid, word_key(document)), [])
                   if question_then_answer(g.output, record.user, record.answer)]
        prompts = {(word_key(g.icl_context), tuple(map(word_key, (x for p in g.icl_pairs for x in p))))
                   for g in outputs}
        if len(prompts) != 1:
            return
        row = outputs[0]
        for q, a in row.icl_pairs:
            found, _ = self.view.find_seeds(placement.cid, q, a, row.icl_context)
            placement.edges.extend(Edge("seed", s.seed_id, "icl_seed_example", placement.cid, s.version_id, None,
                                        "generated_output_match") for s in found)

    # chunks

    def _chunks(self, record: SdgRecord, placement: Placement) -> None:
        assert placement.cid is not None
        text = record.text_field("sdg_document")
        found = self._locate(placement.cid, text) if text else None
        if found is None:
            return
        document, span = found
        role = "sdg_document" if span.method == "document_text_match" else f"sdg_document score={span.score:.3f}"
        placement.edges.extend(
            Edge("chunk", c.chunk_sha256, role, placement.cid, placement.version_id, document.doc_sha256, span.method)
            for c in document.chunks if c.char_start < span.end and span.start < c.char_end)

    def _locate(self, cid: str, text: str) -> tuple[LoadedDocument, Span] | None:
        key = (cid, text)
        if key not in self.spans:
            best: tuple[LoadedDocument, Span] | None = None
            for document in self._documents(cid):
                if document.doc_sha256 not in self.texts:
                    self.texts[document.doc_sha256] = DocText(document.text)
                span = self.texts[document.doc_sha256].locate(text)
                if span is not None and (best is None or span.score > best[1].score):
                    best = (document, span)
                if best is not None and best[1].score == 1.0:
                    break
            self.spans[key] = best
        return self.spans[key]

    def _documents(self, cid: str) -> list[LoadedDocument]:
        if cid not in self.leaf_docs:
            rows = self.view.documents.get(cid, [])
            leaf = LeafInput(cid, self.view.version(cid) or "", self.view.kinds[cid], None, documents=rows)
            try:
                loaded = load_documents(self.documents_root, [leaf], self.chunking)
            except RegistryError as exc:
                self.warnings.append(f"{cid}: its documents cannot be read, so its records get no chunk lineage: {exc}")
                loaded = {}
            self.loaded.update(loaded)
            self.leaf_docs[cid] = list(loaded.values())
        return self.leaf_docs[cid]

    # conversations

    def _by_messages(self, records: list[SdgRecord], placements: list[Placement]) -> None:
        """A record with no leaf takes the lineage of the placed records that hold the same conversation."""
        by_answer: dict[str, list[int]] = {}
        for i, (record, placement) in enumerate(zip(records, placements, strict=True)):
            if placement.cid is not None and word_key(record.answer):
                by_answer.setdefault(word_key(record.answer), []).append(i)
        users: dict[int, str] = {}

        def user_of(i: int) -> str:
            if i not in users:
                users[i] = f" {word_key(records[i].user)}"
            return users[i]

        for record, placement in zip(records, placements, strict=True):
            if placement.cid is not None:
                continue
            user = f" {word_key(record.user)}"
            same = [i for i in by_answer.get(word_key(record.answer), []) if user_of(i).endswith(user)]
            if len({placements[i].cid for i in same}) != 1:
                if same:
                    placement.problem = "its conversation is in records of several leaves"
                continue
            first = placements[same[0]]
            placement.cid, placement.version_id, placement.leaf_method = first.cid, first.version_id, \
                "message_text_match"
            mine = _sample_id(record)
            for i in same:
                other = _sample_id(records[i])
                if other != mine:
                    placement.edges.append(Edge("sample", other, "same_generation", first.cid, first.version_id,
                                                None, "message_text_match"))
                placement.edges.extend(e._replace(method="message_text_match") for e in placements[i].edges
                                       if e.parent_kind in ("seed", "chunk"))
            placement.edges = list(dict.fromkeys(placement.edges))


def _sample_id(record: SdgRecord) -> str:
    return Sample.make(record.messages, "", []).sample_id


# ---------------------------------------------------------------------------------------------- verdicts


def _kind_guess(record: SdgRecord) -> str:
    if record.text_field("sdg_document") or (record.file_leaf or "").startswith("knowledge"):
        return "knowledge"
    return "unknown"


def _verdicts(records: list[SdgRecord], placements: list[Placement], kinds: dict[str, str],
              filters: FilterConfig) -> tuple[list[Verdict], ImportStats, list[tuple[str, str]]]:
    """One sample per distinct conversation (lineage united); placed ones filtered, the rest `unplaced`."""
    merged: dict[str, Sample] = {}
    where: dict[str, list[tuple[str, int, str]]] = {}
    for record, placement in zip(records, placements, strict=True):
        kind = kinds[placement.cid] if placement.cid else _kind_guess(record)
        sample = Sample.make(record.messages, kind, placement.lineage())
        old = merged.get(sample.sample_id)
        if old is not None:
            sample = Sample(old.sample_id, old.messages, old.kind if old.lineage else sample.kind,
                            tuple(dict.fromkeys(old.lineage + sample.lineage)))
        merged[sample.sample_id] = sample
        where.setdefault(sample.sample_id, []).append(
            (record.file, record.line, placement.problem or "no leaf_node_path, no leaf in the file name, no matching "
                                                "document and no placed record with the same conversation"))
    placed = [s for s in merged.values() if s.lineage]
    verdicts, filtered = apply_filters(placed, filters)
    lost = sorted(s.sample_id for s in merged.values() if not s.lineage)
    verdicts = sorted([*verdicts, *(Verdict(merged[sid], False, UNPLACED) for sid in lost)],
                      key=lambda v: v.sample.sample_id)
    dropped: Counter[str] = Counter(filtered.dropped or {})
    dropped["exact_duplicate"] += len(records) - len(merged)
    dropped[UNPLACED] += len(lost)
    unplaced = [(f"{file}:{line}", why) for file, line, why in sorted(w for sid in lost for w in where[sid])]
    stats = ImportStats(len(records), filtered.kept, +dropped)
    stats.extra = {"records_read": len(records), "samples": len(merged),
                   "merged_duplicates": len(records) - len(merged), "unplaced_samples": len(lost),
                   "unplaced_records": [f"{w}: {why}" for w, why in unplaced[:REPORTED_UNPLACED]],
                   **_method_counts(placements)}
    return verdicts, stats, unplaced


def _method_counts(placements: list[Placement]) -> dict[str, dict[str, int]]:
    """Records per method that found their leaf, their seeds, their chunks (a record counts once per kind)."""
    counts: dict[str, Counter[str]] = {"leaf_by": Counter(), "seeds_by": Counter(), "chunks_by": Counter()}
    for p in placements:
        if p.cid is None:
            continue
        counts["leaf_by"][p.leaf_method] += 1
        for kind, key in (("seed", "seeds_by"), ("chunk", "chunks_by")):
            methods = {e.method for e in p.edges if e.parent_kind == kind}
            counts[key].update(methods or {"none"})
    return {k: dict(sorted(v.items())) for k, v in counts.items()}
