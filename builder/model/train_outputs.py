"""What a finished `taxreg train` leaves: the adapter folder (weights, tokenizer, card, training_config.json),
renamed into place inside the catalog transaction that records the run, its inputs and artifacts."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

from builder.model import chat_data, chat_template
from builder.model.train_options import Inputs, TrainOptions, TrainOutcome
from registry import __version__
from registry.catalog.connection import open_catalog
from registry.catalog.generation import RunInfo
from registry.catalog.models import (
    Artifact,
    ModelArtifact,
    ModelRun,
    RunInput,
    hash_directory,
    record_model_run,
    recorded_datasets,
)
from registry.errors import RegistryError
from registry.folders import building, check_output_folder, require_writable, swap_into_place, write_json

SCHEMA_VERSION = 1
CONFIG_FILE = "training_config.json"
ADAPTER_MARK = "adapter_config.json"  # what peft writes into every adapter folder


def check_outputs(options: TrainOptions) -> None:
    """Before any work: --out is new, empty or an earlier adapter, and it and the checkpoint folder can be
    written."""
    check_output_folder(options.out, "--out", lambda folder: (folder / ADAPTER_MARK).is_file(),
                        f"a LoRA adapter folder (no {ADAPTER_MARK})",
                        "pass a new or empty folder, or an adapter folder an earlier `taxreg train` wrote")
    require_writable(options.checkpoint_root, "--checkpoints")


def config_file(options: TrainOptions, inputs: Inputs, threads: int, fingerprint: str, template_source: str,
                 encoded: dict[str, chat_data.Encoded], tokenizer: Any, results: dict[str, Any],
                 world_size: int) -> dict[str, Any]:
    """training_config.json: everything the run was given and read, and its losses; no clock times, so two
    identical runs write identical files."""
    template = tokenizer.chat_template or ""
    return {
        "schema_version": SCHEMA_VERSION, "written_by": f"taxreg {__version__}", "fingerprint": fingerprint,
        "params": options.params(threads),
        # Names and hashes, no local paths: the same inputs in another folder give the same file.
        "base_model": {"model_ref": inputs.base_model.model_ref,
                       "artifact_id": inputs.base.artifact_id, "license": inputs.base_model.license_spdx,
                       "demo": inputs.base_model.demo},
        "dataset": {"name": options.dataset.name, "files": {
            split: {"file": f.path.name, "sha256": f.sha256, "format": f.format}
            for split, f in sorted(inputs.files.items())}},
        "chat_template": {"source": template_source, "sha256": hashlib.sha256(template.encode()).hexdigest(),
                          "assistant_mask": "generation markers" if chat_template.marks_assistant_turns(template)
                          else "token span of each assistant turn"},
        "tokens": {split: e.stats.as_dict() for split, e in sorted(encoded.items())},
        "distributed": {"world_size": world_size}, "deterministic": True,
        "versions": versions(), "results": {k: v for k, v in results.items() if k != "timing"},
    }


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "taxreg": __version__}
    for name in ("torch", "transformers", "peft", "accelerate", "tokenizers", "safetensors"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    return found


def write_adapter(model: Any, tokenizer: Any, options: TrainOptions, inputs: Inputs, config: dict[str, Any],
                  run: tuple[str, datetime], outcome: TrainOutcome) -> None:
    with building(options.out) as work:
        model.save_pretrained(work, safe_serialization=True)
        _portable_adapter_config(work, inputs.base_model.model_ref)
        _save_tokenizer(tokenizer, work)
        write_json(work / CONFIG_FILE, config)
        _write_card(work, options, inputs, config)
        for path in work.iterdir():
            path.chmod(0o644)
        if options.catalog is None:
            swap_into_place((work, options.out))
            return
        adapter = hash_directory(work)
        with open_catalog(options.catalog) as con:
            rows = _model_run(con, options, inputs, config, run, outcome, adapter)
            record_model_run(con, rows, before_commit=lambda: swap_into_place((work, options.out)))


def _model_run(con: Any, options: TrainOptions, inputs: Inputs, config: dict[str, Any], run: tuple[str, datetime],
               outcome: TrainOutcome, adapter: Artifact) -> ModelRun:
    run_id, started = run
    base_ref = inputs.base_model.model_ref
    known = recorded_datasets(con, [f.sha256 for f in inputs.files.values()])
    roles = {"train": "train", "test": "eval"}
    run_inputs = [RunInput("dataset", f.sha256, roles[split]) for split, f in sorted(inputs.files.items())]
    run_inputs += [RunInput("model_artifact", inputs.base.artifact_id, "base"),
                   RunInput("external_model", base_ref, "base")]
    stats = {**outcome.results, "seconds": round(outcome.seconds, 2), "peak_rss_mb": round(outcome.peak_rss_mb, 1),
             "resumed_from_step": outcome.resumed_from, "fingerprint": config["fingerprint"],
             "datasets_not_in_catalog": sorted(f.sha256 for f in inputs.files.values() if f.sha256 not in known)}
    info = RunInfo(generator="peft-lora", params={**config["params"], "base_model": str(options.base_model),
                                                   "dataset": str(options.dataset)},
                   random_seed=options.seed, prompt_template_sha256=config["chat_template"]["sha256"],
                   stage="train", build_id=os.environ.get("TAXREG_BUILD_ID"))
    metrics = {k: config["results"][k] for k in ("global_step", "train_loss_first", "train_loss_last",
                                                  "eval_loss_first", "eval_loss")}
    artifacts = [
        ModelArtifact("base", options.base_model, inputs.base, base_ref, base_ref, "safetensors"),
        ModelArtifact("adapter", options.out, adapter, base_ref, inputs.base.artifact_id, "peft-lora", metrics)]
    return ModelRun(run_id, info, started, "succeeded", stats, run_inputs, artifacts, [inputs.base_model])


def check_catalog(path: Path) -> None:
    """Fail before training, not after it, when the catalog cannot be opened (locked, too new, a folder)."""
    with open_catalog(path):
        pass


def record_failure(options: TrainOptions, inputs: Inputs, run_id: str, started: datetime, threads: int,
                    exc: BaseException) -> None:
    from registry.catalog.generation import record_failed_run

    info = RunInfo(generator="peft-lora", params={**options.params(threads), "base_model": str(options.base_model),
                                                  "dataset": str(options.dataset)},
                   random_seed=options.seed, prompt_template_sha256=None, stage="train",
                   build_id=os.environ.get("TAXREG_BUILD_ID"))
    try:
        assert options.catalog is not None
        with open_catalog(options.catalog) as con:
            record_failed_run(con, run_id, info, started, f"{type(exc).__name__}: {exc}")
    except RegistryError:
        pass  # the training error is the one to report


def _portable_adapter_config(folder: Path, model_ref: str) -> None:
    """peft writes the local base path and target modules in set order (varies per process): write the model's
    name (the explicit base wins on load anyway) and the targets sorted, so equal runs write equal bytes."""
    path = folder / "adapter_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = model_ref
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    write_json(path, config)


def _save_tokenizer(tokenizer: Any, folder: Path) -> None:
    """The tokenizer the adapter was trained with (its chat template included), loadable by older readers."""
    tokenizer.save_pretrained(folder)
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # transformers 5 writes TokenizersBackend
    config["chat_template"] = tokenizer.chat_template
    for runtime_only in ("is_local", "local_files_only"):
        config.pop(runtime_only, None)
    write_json(path, config)


def _write_card(folder: Path, options: TrainOptions, inputs: Inputs, config: dict[str, Any]) -> None:
    demo = ("\n**Trained on the taxreg DEMO base model** (random weights): the loss falls, the answers carry no "
            "meaning.\n" if inputs.base_model.demo else "")
    results = config["results"]
    card = f"""---
library_name: peft
tags: [taxreg, lora{", demo" if inputs.base_model.demo else ""}]
---

# LoRA adapter for {inputs.base_model.model_ref}
{demo}
- Trained by `taxreg train` (taxreg {__version__}) on dataset `{options.dataset.name}`, train split sha256
  `{inputs.files["train"].sha256}`.
- LoRA r={options.rank}, alpha={options.alpha}, dropout={options.dropout:g}, targets {", ".join(options.targets)};
  {results["global_step"]} steps.
- Train loss {_fmt(results["train_loss_first"])} -> {_fmt(results["train_loss_last"])}; eval loss \
{_fmt(results["eval_loss_first"])} -> {_fmt(results["eval_loss"])}.

Every parameter, input hash and library version is in `{CONFIG_FILE}`.
"""
    (folder / "README.md").write_text(card, encoding="utf-8")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"
