"""OpenLineage run events of `taxreg build`: a real HTTP receiver on 127.0.0.1 records the events of a data-only
build with a release, and they form one connected graph from the taxonomy to the release; without a url the same
events land in the build folder's JSONL; a failing stage says FAIL with its error."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from builder.layout import BuildLayout
from builder.pipeline import run_build
from builder.settings import LineageTarget
from builder.stage import BuildContext, BuildOptions, BuildStage, StageResult
from registry.config import ValidationConfig
from registry.errors import RegistryError
from tests.conftest import EXAMPLE_TAXONOMY

DATA_STAGES = ["validate+index", "generate", "dataset", "release"]


class Receiver:
    """An OpenLineage endpoint that keeps every event POSTed to /api/v1/lineage."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/api/v1/lineage":
                    receiver.events.append(json.loads(body))
                self.send_response(201 if self.path == "/api/v1/lineage" else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def options(build: Path, **kwargs: Any) -> BuildOptions:
    return BuildOptions(EXAMPLE_TAXONOMY, build, release="1.0.0", model=False, site=False, **kwargs)


@pytest.fixture(scope="module")
def built(receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one data-only build of this module, its events sent to the receiver."""
    build = tmp_path_factory.mktemp("lineage") / "build"
    run_build(options(build, lineage=LineageTarget(receiver.url, "ci")), ValidationConfig(), lambda reports: None)
    return build


def names(datasets: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in datasets}


def test_each_stage_sends_start_and_complete_with_its_datasets_and_facets(built: Path,
                                                                          receiver: Receiver) -> None:
    events = receiver.events
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        (stage, state) for stage in DATA_STAGES for state in ("START", "COMPLETE")]
    assert {e["job"]["namespace"] for e in events} == {"ci"}
    runs = defaultdict(set)
    for e in events:
        runs[e["job"]["name"]].add(e["run"]["runId"])
        assert e["run"]["facets"]["parent"]["job"]["name"] == "build"
        location = e["job"]["facets"]["sourceCodeLocation"]
        assert location["url"].startswith("pkg:pypi/taxonomy-registry@") and len(location["version"]) == 64
        assert e["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    assert all(len(ids) == 1 for ids in runs.values())  # START and COMPLETE of one run share its id
    assert len({e["run"]["facets"]["parent"]["run"]["runId"] for e in events}) == 1
    by_job = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    taxonomy = ("file", str(EXAMPLE_TAXONOMY.resolve()))
    assert taxonomy in names(by_job["validate+index"]["inputs"])
    assert ("file", str(BuildLayout(built).dataset().resolve())) in names(by_job["dataset"]["outputs"])
    assert "FROM sample s" in by_job["dataset"]["job"]["facets"]["sql"]["query"]
    assert names(by_job["generate"]["inputs"]) == names(by_job["validate+index"]["outputs"])
    assert {n for _, n in names(by_job["release"]["outputs"])} == {
        str((built / "releases/1.0.0" / name).resolve()) for name in ("manifest.json", "SHA256SUMS")}


def test_the_events_of_a_build_form_one_graph_from_the_taxonomy_to_the_release(built: Path,
                                                                               receiver: Receiver) -> None:
    """Datasets and jobs as nodes, input -> job -> output as edges: the release is reachable from the taxonomy,
    and every node is in one connected component."""
    edges: dict[str, set[str]] = defaultdict(set)
    for e in receiver.events:
        job = f"job:{e['job']['name']}"
        for d in e["inputs"]:
            edges[f"{d['namespace']}|{d['name']}"].add(job)
        for d in e["outputs"]:
            edges[job].add(f"{d['namespace']}|{d['name']}")
    start = f"file|{EXAMPLE_TAXONOMY.resolve()}"
    reached, todo = {start}, [start]
    while todo:
        for nxt in edges[todo.pop()] - reached:
            reached.add(nxt)
            todo.append(nxt)
    assert f"file|{(built / 'releases/1.0.0/manifest.json').resolve()}" in reached
    assert {f"job:{s}" for s in DATA_STAGES} <= reached
    nodes = set(edges) | {n for targets in edges.values() for n in targets}
    undirected: dict[str, set[str]] = defaultdict(set)
    for a, targets in edges.items():
        for b in targets:
            undirected[a].add(b)
            undirected[b].add(a)
    seen, todo = {start}, [start]
    while todo:
        for nxt in undirected[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    assert seen == nodes


def test_without_a_url_the_events_are_jsonl_in_the_build_folder(built: Path) -> None:
    run_build(options(built), ValidationConfig(), lambda reports: None)  # every stage skipped: still a run each
    [events_file] = sorted(BuildLayout(built).lineage.glob("*.jsonl"))
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        (stage, state) for stage in DATA_STAGES for state in ("START", "COMPLETE")]
    assert {e["job"]["namespace"] for e in events} == {"taxreg"}


class Broken(BuildStage):
    name = "broken"

    def run(self, ctx: BuildContext) -> StageResult:
        raise RegistryError("the stage could not read its input")


def test_a_failing_stage_sends_fail_with_its_error(receiver: Receiver, tmp_path: Path) -> None:
    sent = len(receiver.events)
    with pytest.raises(RegistryError):
        run_build(BuildOptions(EXAMPLE_TAXONOMY, tmp_path / "build", lineage=LineageTarget(receiver.url)),
                  ValidationConfig(), lambda reports: None, stages=[Broken()])
    [start, fail] = receiver.events[sent:]
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert fail["run"]["facets"]["errorMessage"]["message"] == "RegistryError: the stage could not read its input"


def test_an_endpoint_that_is_down_is_a_warning_not_a_failed_build(tmp_path: Path) -> None:
    class Quick(BuildStage):
        name = "quick"

        def run(self, ctx: BuildContext) -> StageResult:
            return StageResult("done")

    reports = run_build(BuildOptions(EXAMPLE_TAXONOMY, tmp_path / "build", lineage=LineageTarget(
        "http://127.0.0.1:9", timeout=0.5)), ValidationConfig(), lambda reports: None, stages=[Quick()])
    assert reports[0].status == "ran" and "OpenLineage events not sent (http://127.0.0.1:9)" in str(
        reports[0].warning)
