"""The base model as ONNX (model/onnx-base/): what an evaluation compares the fine-tuned graph with.

The fine-tuned fp32 graph with the base's weights put back: LoRA changes weights, not the graph, so the same
traced graph (the same fused kernels, the same I/O contract) computes the base model once its changed initializers
hold the base's values. Each initializer of the graph is matched, by content, to a weight of the merged model (or
its transpose: the exporter stores some matmul weights transposed) and replaced by the base's. When a weight the
adapter changed is not found that way, the base is exported on its own (torch.onnx, as `taxreg export
--no-adapter`). Either way the graph must pass the fp32 parity gate against PyTorch's base before it is moved into
place. Measured on the demo model: ~1 s with a warm process, against ~6-12 s for a second export.
Imported lazily (torch, onnx).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from builder.layout import ModelLayout
from builder.model import base_model, onnx_graph, parity
from registry import folders
from registry.catalog import models
from registry.errors import RegistryError
from registry.model_folder import CONFIG, ModelFolder

MARK = "taxreg_base_graph"  # config.json key: what this graph was made from


class ParityFailed(RegistryError):
    """The base graph does not compute what the base model computes in PyTorch."""


@dataclass(frozen=True, slots=True)
class BaseGraph:
    folder: Path
    artifact_id: str
    method: str  # reweighted | exported | reused
    max_abs_diff: float | None


def made_from(folder: Path) -> dict[str, Any]:
    """What an onnx-base folder says it was made from ({} when it says nothing)."""
    mark = ModelFolder.lenient(folder).config.get(MARK)
    return mark if isinstance(mark, dict) else {}


def base_graph(model: ModelLayout, catalog: Path | None, dataset: Path | None, base: Path | None = None
               ) -> BaseGraph:
    """model.onnx_base for the base (`base`, else model.base) and the adapter of `model` (kept when it was made
    from the same ones)."""
    base = base if base is not None else model.base
    base_model.check(base)
    base_id = models.hash_directory(base).artifact_id
    tuned_id = models.hash_directory(model.onnx).artifact_id
    wanted = {"base_artifact_id": base_id, "graph_artifact_id": tuned_id}
    if model.onnx_base.is_dir() and {k: made_from(model.onnx_base).get(k) for k in wanted} == wanted:
        graph = BaseGraph(model.onnx_base, models.hash_directory(model.onnx_base).artifact_id, "reused", None)
        _record(catalog, base, graph, base_id, tuned_id, {})
        return graph
    from builder.model.export import load_merged, quiet_libraries

    with quiet_libraries():
        loaded, tokenizer = base_model.load(base)
        weights = {name: tensor.detach().numpy() for name, tensor in loaded.state_dict().items()}  # views
        tuned, _ = load_merged(base, model.adapter)
        placing = _placing(tuned, weights)
        del tuned  # its weights are in the tuned graph already: only their digests are needed
        with folders.building(model.onnx_base) as staging:
            method = _reweighted(model.onnx / onnx_graph.MODEL_FILE, placing, weights, staging)
            if method is None:
                onnx_graph.export_fp32(loaded, staging)
                method = "exported"
            figures = _checked(loaded, tokenizer, staging, dataset)
            from builder.model.export import write_side_files

            write_side_files(loaded, tokenizer, base, staging)
            _mark(staging, {**wanted, "method": method})
            graph = BaseGraph(model.onnx_base, models.hash_directory(staging).artifact_id, method,
                              float(figures["max_abs_diff"]))
            folders.swap_into_place((staging, model.onnx_base))
    _record(catalog, base, graph, base_id, tuned_id, figures)
    return graph


@dataclass(frozen=True, slots=True)
class _Placing:
    """Where each tuned weight may sit in the graph: its digest (and its transpose's) -> (name, transposed)."""

    index: dict[tuple[Any, ...], tuple[str, bool]]
    changed: set[str]  # the weights the adapter changed


def _placing(tuned: Any, base: dict[str, Any]) -> _Placing | None:
    """None when the tuned model's weights do not match the base's names and shapes."""
    import numpy as np

    index: dict[tuple[Any, ...], tuple[str, bool]] = {}
    changed = set()
    for name, tensor in tuned.state_dict().items():
        value = tensor.detach().numpy()
        if name not in base or base[name].shape != value.shape:
            return None
        if not np.array_equal(base[name], value):
            changed.add(name)
        index.setdefault(_key(value), (name, False))
        if value.ndim == 2:
            index.setdefault(_key(np.ascontiguousarray(value.T)), (name, True))
    return _Placing(index, changed)


def _reweighted(graph_path: Path, placing: _Placing | None, base: dict[str, Any], out: Path) -> str | None:
    """The tuned graph with the base's weights, saved in `out` tensor by tensor; None when a changed weight
    cannot be placed."""
    import numpy as np

    if placing is None:
        return None
    placed = set()

    def replace(_: str, value: Any) -> Any:
        hit = placing.index.get(_key(value))
        if hit is None:
            return None
        name, transposed = hit
        placed.add(name)
        return np.ascontiguousarray(base[name].T if transposed else base[name]).astype(value.dtype)

    onnx_graph.rewrite_weights(graph_path, out / onnx_graph.MODEL_FILE, replace)
    if placing.changed - placed:
        for written in out.iterdir():  # the export that follows starts from an empty folder
            written.unlink()
        return None
    return "reweighted"


def _key(value: Any) -> tuple[Any, ...]:
    return value.shape, value.dtype.str, hashlib.blake2b(value.tobytes(), digest_size=16).digest()


def _checked(model: Any, tokenizer: Any, folder: Path, dataset: Path | None) -> dict[str, Any]:
    """The fp32 parity gate, on a few prompts of the test split (or the fixed ones)."""
    thresholds = parity.Thresholds(greedy_tokens=8)
    prompts = parity.load_eval_set(dataset, tokenizer, n_prompts=4)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    batch = parity.left_pad(prompts.prompts, int(pad))
    reference = parity.torch_reference(model, batch, thresholds.greedy_tokens)
    session = parity.OrtModel(folder / onnx_graph.MODEL_FILE, onnx_graph.CacheShape.of(model.config))
    result = parity.check_variant("base", session, batch, reference, thresholds, gate=True)
    if not result.passed:
        raise ParityFailed(f"the base model's ONNX graph failed the parity gate: max |logit diff| "
                           f"{result.max_abs_diff:.3g} (limit {thresholds.max_abs_diff:g})",
                           hint="run with --debug and report it; the fine-tuned export is untouched")
    return result.as_dict()


def _mark(folder: Path, mark: dict[str, Any]) -> None:
    config = dict(ModelFolder.read(folder).config)
    config[MARK] = mark
    folders.write_json(folder / CONFIG, config)


def _record(catalog: Path | None, base_folder: Path, graph: BaseGraph, base_id: str, tuned_id: str,
            figures: dict[str, Any]) -> None:
    """The base graph as a model_artifact of kind onnx_base (derived from the base), once."""
    if catalog is None:
        return
    from registry.catalog.connection import open_catalog
    from registry.catalog.evaluation import artifact_of
    from registry.catalog.generation import RunInfo

    with open_catalog(catalog) as con:
        if artifact_of(con, graph.artifact_id) is not None:
            return
        base = models.describe_base_model(base_folder, models.hash_directory(base_folder))
        artifact = models.ModelArtifact("onnx_base", graph.folder, models.hash_directory(graph.folder),
                                        base.model_ref, base_id, "onnx", figures or None)
        info = RunInfo(generator=f"taxreg.base_graph.{graph.method}", params={"graph_of": tuned_id},
                       random_seed=0, prompt_template_sha256=None, stage="export")
        run = models.ModelRun(uuid.uuid4().hex, info, datetime.now(UTC), "succeeded", {"parity": figures},
                              [models.RunInput("model_artifact", base_id, "base"),
                               models.RunInput("model_artifact", tuned_id, "graph")], [artifact], [base])
        models.record_model_run(con, run)
