"""OpenLineage run events of `taxreg build`: each stage is a job whose runs say START, then COMPLETE or FAIL, with
the datasets it read and wrote, so lineage tools (Marquez, DataHub, OpenMetadata) draw the build from the taxonomy
to the release. Sent with the `openlineage-python` client to `[lineage] url`, else appended to a JSONL file in the
build folder (`BuildLayout.lineage_events`).

A stage's inputs are the outputs of the stages it needs or reads, and what it reads from outside the build (the
taxonomy, the document cache); its outputs are its files, else the catalog tables it writes (`Stage.lineage`).
Every dataset is named the same way wherever it appears, so the events of one build form one connected graph.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from builder.source_version import source_digest
from builder.stage import BuildContext, Stage
from registry import __version__

PRODUCER = f"https://example.invalid/taxonomy-registry/{__version__}"
CATALOG = "duckdb"  # namespace prefix of the catalog's tables


class LineageEmitter:
    """One build's events; a failed send is kept as a warning (lineage never fails a build)."""

    def __init__(self, ctx: BuildContext, stages: Sequence[Stage]) -> None:
        self.ctx = ctx
        self.stages = {s.name: s for s in stages}
        self.client = _client(ctx)
        self.runs: dict[str, str] = {}
        self.problem: str | None = None

    def started(self, stage: Stage) -> None:
        self.runs[stage.name] = str(_new_run_id())
        self._emit(stage, "START")

    def finished(self, stage: Stage, error: BaseException | None = None) -> str | None:
        """COMPLETE, or FAIL with the error; returns a warning when an event could not be sent."""
        self._emit(stage, "COMPLETE" if error is None else "FAIL", error)
        problem, self.problem = self.problem, None
        return problem

    def _emit(self, stage: Stage, state: str, error: BaseException | None = None) -> None:
        from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

        event = RunEvent(eventType=RunState[state], eventTime=datetime.now(UTC).isoformat(), producer=PRODUCER,
                         run=Run(runId=self.runs[stage.name], facets=self._run_facets(error)),
                         job=Job(namespace=self.ctx.options.lineage.namespace, name=stage.name,
                                 facets=_job_facets(stage, self.ctx)),
                         inputs=[_input(*d) for d in self.inputs(stage)],
                         outputs=[_output(*d) for d in self.outputs(stage)])
        try:
            self.client.emit(event)
        except Exception as exc:  # the client raises requests', OS and its own errors alike
            self.problem = self.problem or f"OpenLineage events not sent ({_target(self.ctx)}): {str(exc)[:200]}"

    def inputs(self, stage: Stage) -> list[tuple[str, str]]:
        lineage = stage.lineage(self.ctx)
        upstream = [*stage.needs, *lineage.reads]
        found = [d for name in upstream if name in self.stages for d in self.outputs(self.stages[name])]
        return [*(_source(self.ctx, s) for s in lineage.sources), *dict.fromkeys(found)]

    def outputs(self, stage: Stage) -> list[tuple[str, str]]:
        files = stage.outputs(self.ctx)
        if files:
            return [("file", str(path.resolve())) for path in files]
        catalog = f"{CATALOG}://{self.ctx.layout.catalog.resolve()}"
        return [(catalog, f"main.{table}") for table in stage.lineage(self.ctx).tables]

    def _run_facets(self, error: BaseException | None) -> dict[str, Any]:
        from openlineage.client.facet_v2 import error_message_run, parent_run

        build = uuid.UUID(hex=self.ctx.build_id) if len(self.ctx.build_id) == 32 else _new_run_id()
        facets: dict[str, Any] = {"parent": parent_run.ParentRunFacet(
            run=parent_run.Run(runId=str(build)),
            job=parent_run.Job(namespace=self.ctx.options.lineage.namespace, name="build"))}
        if error is not None:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"{type(error).__name__}: {error}"[:2000], programmingLanguage="python")
        return facets


def _client(ctx: BuildContext) -> Any:
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.file import FileConfig, FileTransport
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    target = ctx.options.lineage
    if target.url:
        return OpenLineageClient(transport=HttpTransport(HttpConfig(
            url=target.url, timeout=target.timeout, retry={"total": 2, "backoff_factor": 0.1})))
    path = ctx.layout.lineage_events(ctx.build_id or "build")
    path.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))


def _target(ctx: BuildContext) -> str:
    return ctx.options.lineage.url or str(ctx.layout.lineage_events(ctx.build_id))


def _new_run_id() -> uuid.UUID:
    from openlineage.client.uuid import generate_new_uuid

    return generate_new_uuid()


def _source(ctx: BuildContext, name: str) -> tuple[str, str]:
    """A dataset from outside the build folder: the taxonomy tree or the document cache."""
    folders = {"taxonomy": ctx.options.taxonomy, "documents": ctx.config.documents(ctx.options.taxonomy)}
    return "file", str(Path(folders[name]).resolve())


def _input(namespace: str, name: str) -> Any:
    from openlineage.client.event_v2 import InputDataset

    return InputDataset(namespace=namespace, name=name)


def _output(namespace: str, name: str) -> Any:
    from openlineage.client.event_v2 import OutputDataset

    return OutputDataset(namespace=namespace, name=name)


def _job_facets(stage: Stage, ctx: BuildContext) -> dict[str, Any]:
    from openlineage.client.facet_v2 import job_type_job, source_code_location_job, sql_job

    module = type(stage).__module__
    facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration="TAXREG", jobType="STAGE"),
        "sourceCodeLocation": source_code_location_job.SourceCodeLocationJobFacet(
            type="python", url=f"pkg:pypi/taxonomy-registry@{__version__}", path=module.replace(".", "/") + ".py",
            version=source_digest())}
    sql = stage.lineage(ctx).sql
    if sql:
        facets["sql"] = sql_job.SQLJobFacet(query=" ".join(sql.split()), dialect="duckdb")
    return facets
