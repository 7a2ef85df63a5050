"""`taxreg export`: merge the LoRA adapter, export one ONNX graph with a KV cache (fp32, int8, optional int4),
gate it on parity with PyTorch, and move it into place only when fp32 passes.

Everything is written under a temporary folder beside the outputs and renamed into place at the end, so a failed
export (parity or anything else) leaves the previous one intact. Imported lazily by the CLI (torch, peft...).
"""

from __future__ import annotations

import gc
import json
import logging
import re
import resource
import shutil
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from builder.layout import ModelLayout
from builder.model import base_model, mixed_int8, onnx_graph, parity, train_outputs
from builder.settings import INT8_FP32_SHARE
from registry import __version__, folders, source_date
from registry.errors import EnvironmentProblem, RegistryError
from registry.model_folder import CONFIG, ModelFolder

SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "chat_template.jinja")
# torch.onnx re-arms its registration logger during each export, so that one is named on its own.
CHATTY_LOGGERS = ("torch.onnx", "torch.onnx._internal.exporter._registration", "torch.export", "onnxscript")
ARTIFACT_KINDS = {"fp32": "onnx", "int8": "onnx_int8", "int4": "onnx_int4"}


class ParityFailed(RegistryError):
    """The fp32 graph does not compute what PyTorch computes: the export is refused (exit code 1)."""


@dataclass
class ExportOptions:
    base_model: Path
    adapter: Path | None
    out: Path
    catalog: Path | None
    dataset: Path | None = None
    int4: bool = False
    thresholds: parity.Thresholds = field(default_factory=parity.Thresholds)
    n_prompts: int = 8
    # when all-int8 misses the top-1 target: at most this share of the matmul weights may stay fp32 (0: never)
    int8_fp32_share: float = INT8_FP32_SHARE
    require_dataset: bool = False  # True: `dataset` was asked for, so a missing one is an error, not fixed prompts
    int8: bool = True  # off: fp32 alone (and int4 when asked)
    device: str = "cpu"  # where the parity gate runs the graphs: cpu, or cuda (onnxruntime-gpu's CUDA provider)
    external_data_above: int = onnx_graph.EXTERNAL_DATA_ABOVE  # bytes of graph past which weights go to .data


@dataclass
class ExportOutcome:
    run_id: str
    report: dict[str, Any]
    written: dict[str, Path]
    seconds: float
    peak_rss_mb: float


def export(options: ExportOptions, progress: Any = None) -> ExportOutcome:
    """The whole stage; `progress(message)` is told what runs. Raises ParityFailed when fp32 fails the gate."""
    say = progress or (lambda message: None)
    started, clock = datetime.now(UTC), time.perf_counter()
    _check_inputs(options)
    remove_stale_work(options.out)
    with folders.building(ModelLayout(options.out).export_work) as work, quiet_libraries():
        return _export(options, say, ModelLayout(work), started, clock)


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """The exporter, quantizer and loaders talk a lot (warnings, progress bars, root-logger hints): mute them."""
    from transformers.utils import logging as hf_logging

    root = logging.getLogger()
    level, hf_level = root.level, hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    root.setLevel(logging.ERROR)
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    quieted = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    for name in quieted:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
        hf_logging.set_verbosity(hf_level)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
        for name, old in quieted.items():
            logging.getLogger(name).setLevel(old)


def _export(options: ExportOptions, say: Any, work: ModelLayout, started: datetime, clock: float) -> ExportOutcome:
    say("loading and merging the model")
    model, tokenizer = load_merged(options.base_model, options.adapter)
    # PyTorch's figures come first, on the model as loaded, before the dynamo export has traced it.
    say("running the evaluation prompts through PyTorch")
    reference = torch_reference(model, tokenizer, options)
    say("exporting the fp32 graph")
    fp32 = onnx_graph.export_fp32(model, work.onnx, options.external_data_above)
    write_side_files(model, tokenizer, options.base_model, fp32.parent)
    graphs, checked = {"fp32": fp32}, {}
    if options.int8:
        say("quantizing to int8")
        graphs["int8"], checked["int8"] = _int8(model, tokenizer, fp32, reference, options, work, say)
    merged_dir = work.root / "merged"
    if options.int4:
        model.save_pretrained(merged_dir, safe_serialization=True)
        tokenizer.save_pretrained(merged_dir)
    # From here on only the config is read. Dropping the model does not yet return its memory: torch.onnx's
    # optimizer leaves onnxscript's module-level rule objects holding the exported graph, which wraps the
    # Parameters (bench/README.md, realistic.py follow-up).
    config = model.config
    del model
    gc.collect()
    if options.int4:
        say("building int4 with onnxruntime-genai")
        graphs["int4"] = onnx_graph.build_int4(merged_dir, work.variant("int4"), work.root)
        shutil.rmtree(merged_dir)
        _copy_side_files(fp32.parent, graphs["int4"].parent, "int4 (onnxruntime-genai builder; no position_ids "
                                                             "input: positions come from attention_mask)")
    say("checking parity with PyTorch")
    report = check_parity(config, reference, graphs, options, checked)
    peak = _peak_rss_mb()
    # timings go to the catalog run's stats, not parity.json: equal inputs must write an equal file
    timing = {"seconds": round(time.perf_counter() - clock, 2), "peak_rss_mb": round(peak, 1)}
    run_id = uuid.uuid4().hex
    out = ModelLayout(options.out)
    if not report["passed"]:
        folders.write_json(out.parity_failed, report)
        _record(options, run_id, started, {**report, "export": timing}, {}, status="failed")
        fp = report["variants"]["fp32"]
        raise ParityFailed(
            f"the fp32 graph failed the parity gate: max |logit diff| {fp['max_abs_diff']:.3g} "
            f"(limit {options.thresholds.max_abs_diff:g}), greedy identical on "
            f"{fp['greedy_identical_prompts']}/{fp['n_prompts']} prompts; the previous export is untouched",
            hint=f"see {out.parity_failed}; run with --debug and report it if the model is "
                 "a supported architecture")
    folders.write_json(work.parity, report)
    built = {v: work.variant(v) for v in ModelLayout.VARIANTS if work.variant(v).is_dir()}
    written = {out.variant(v).name: out.variant(v) for v in built} | {out.parity.name: out.parity}
    # A variant this export did not build (onnx-int4 without --int4) goes too: it belonged to another model.
    moves = [(built.get(v), out.variant(v)) for v in ModelLayout.VARIANTS] + [(work.parity, out.parity),
                                                                              (None, out.parity_failed)]
    _record(options, run_id, started, {**report, "export": timing}, built, status="succeeded",
            swap=lambda: folders.swap_into_place(*moves))
    return ExportOutcome(run_id, report, written, time.perf_counter() - clock, peak)


def _check_inputs(options: ExportOptions) -> None:
    """Everything that can be wrong with the inputs, before minutes of loading and tracing."""
    source_date.from_environment()  # parity.json is stamped with it
    base_model.check_exportable(options.base_model)
    parity.providers(options.device)  # --device cuda without onnxruntime-gpu's CUDA provider fails here
    if options.adapter is not None:
        _check_adapter(options.adapter, options.base_model)
    if options.int4 and not onnx_graph.genai_available():
        raise EnvironmentProblem("--int4 needs onnxruntime-genai, which is not installed",
                                 hint="pip install onnxruntime-genai in this (CPU) environment, or leave out --int4")
    if options.require_dataset and options.dataset is not None and not options.dataset.exists():
        raise RegistryError(f"no dataset folder at {options.dataset}",
                            hint="pass the folder `taxreg dataset build` wrote, or leave out --dataset")
    if options.dataset is not None and options.dataset.exists() and not options.dataset.is_dir():
        raise RegistryError(f"--dataset {options.dataset} is not a folder",
                            hint="pass a dataset folder such as build/datasets/default")
    folders.require_writable(options.out, "--out")
    if options.catalog is not None:
        train_outputs.check_catalog(options.catalog)


def _check_adapter(adapter: Path, base: Path) -> None:
    """A peft LoRA folder with safetensors weights, trained on this base when its training_config.json says."""
    hint = "run `taxreg train` first, pass --adapter PATH, or --no-adapter to export the base"
    config_path = adapter / "adapter_config.json"
    if not config_path.is_file():
        raise RegistryError(f"no LoRA adapter at {adapter} (adapter_config.json missing)", hint=hint)
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"{config_path} is not valid JSON ({exc})", hint=hint) from None
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise RegistryError(f"{config_path} does not describe a LoRA adapter (peft_type LORA)", hint=hint)
    if not (adapter / "adapter_model.safetensors").is_file():
        raise RegistryError(f"{adapter} has no adapter_model.safetensors{base_model.pickles_found(adapter)}; "
                            "pickled weights are never loaded", hint=hint)
    trained_on = _trained_on(adapter)
    if trained_on is not None:
        from registry.catalog.models import hash_directory

        if hash_directory(base).artifact_id != trained_on.get("artifact_id"):
            raise RegistryError(f"the adapter at {adapter} was trained on another base model "
                                f"({trained_on.get('model_ref')}, artifact {str(trained_on.get('artifact_id'))[:16]}), "
                                f"not on {base}", hint="pass the --base-model it was trained on (its "
                                                        "training_config.json says which), or train a new adapter")


def _trained_on(adapter: Path) -> dict[str, Any] | None:
    """training_config.json's base_model entry (adapters from `taxreg train`; others have none)."""
    try:
        config = json.loads((adapter / "training_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    base = config.get("base_model") if isinstance(config, dict) else None
    return base if isinstance(base, dict) and base.get("artifact_id") else None


def remove_stale_work(out: Path) -> None:
    """The temporary folders killed exports left in `out`: `folders.building`'s, and `.export-<pid>-<random>` (or
    without the pid) from earlier versions."""
    folders.remove_stale_temps(ModelLayout(out).export_work)
    folders.remove_stale(out, re.compile(r"\.export-(?:(\d+)-)?\w+", re.ASCII))


def load_merged(base: Path, adapter: Path | None) -> tuple[Any, Any]:
    """The base in fp32 with the adapter merged into its weights (merge_and_unload), and its tokenizer."""
    from safetensors import SafetensorError
    from transformers import AutoTokenizer

    model, tokenizer = base_model.load(base)
    if adapter is not None:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
            if (adapter / "tokenizer.json").is_file():
                tokenizer = AutoTokenizer.from_pretrained(adapter, trust_remote_code=False)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
            raise RegistryError(f"cannot load the LoRA adapter at {adapter} onto {base}: {base_model.brief(exc)}",
                                hint="check adapter_config.json and adapter_model.safetensors (truncated? made for "
                                     "another base?)") from None
    model.eval()
    return model, tokenizer


def write_side_files(model: Any, tokenizer: Any, base: Path, folder: Path) -> None:
    """config.json with an explicit rope_theta, generation_config.json, and a tokenizer older readers load."""
    shape = onnx_graph.CacheShape.of(model.config)
    config = model.config.to_dict()
    rope = config.get("rope_parameters") or {}
    # transformers 5 keeps rope_theta inside rope_parameters; older readers silently assume 10000 without it.
    config["rope_theta"] = float(rope.get("rope_theta") or getattr(model.config, "rope_theta", None) or 10000.0)
    config.update(num_hidden_layers=shape.layers, num_key_value_heads=shape.kv_heads, head_dim=shape.head_dim,
                  torch_dtype="float32")
    config.pop("_name_or_path", None)  # a local path: it would differ between two identical builds
    for key, value in ModelFolder.read(base).config.items():
        if key.startswith("taxreg_"):
            config.setdefault(key, value)
    config["taxreg_onnx"] = {"exported_by": f"taxreg {__version__}", "inputs": shape.input_names(),
                             "outputs": shape.output_names(), "kv_cache": True}
    folders.write_json(folder / CONFIG, config)
    generation = model.generation_config.to_diff_dict() if model.generation_config is not None else {}
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if generation.get(key) is None and getattr(tokenizer, key, None) is not None:
            generation[key] = getattr(tokenizer, key)
    generation.pop("transformers_version", None)
    folders.write_json(folder / "generation_config.json", generation)
    _write_tokenizer(tokenizer, folder, int(model.config.max_position_embeddings))


def _write_tokenizer(tokenizer: Any, folder: Path, context: int) -> None:
    tokenizer.save_pretrained(folder)
    path = folder / "tokenizer_config.json"
    tok_config = json.loads(path.read_text(encoding="utf-8"))
    # transformers 5 writes TokenizersBackend, which older readers reject; this class loads in both.
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tok_config["model_max_length"] = context
    for runtime_only in ("is_local", "local_files_only"):
        tok_config.pop(runtime_only, None)
    if tokenizer.chat_template and not tok_config.get("chat_template"):
        tok_config["chat_template"] = tokenizer.chat_template
    for name, token in tokenizer.special_tokens_map.items():
        if isinstance(token, str):
            tok_config.setdefault(name, token)
    folders.write_json(path, tok_config)
    special = folder / "special_tokens_map.json"
    if not special.is_file():
        folders.write_json(special, {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)})
    for extra in folder.iterdir():  # keep the directory to the contract: no stray files the writer chose
        if extra.name not in SIDE_FILES and extra.suffix != ".onnx" and not extra.name.endswith(".data"):
            extra.unlink()


def _copy_side_files(src: Path, dst: Path, quantization: str) -> None:
    for name in SIDE_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    config = dict(ModelFolder.read(dst).config)
    config["taxreg_onnx"]["quantization"] = quantization
    config["taxreg_onnx"]["inputs"], config["taxreg_onnx"]["outputs"] = onnx_graph.io_names(dst / onnx_graph.MODEL_FILE)
    folders.write_json(dst / CONFIG, config)


@dataclass(frozen=True)
class Reference:
    """The evaluation prompts and what PyTorch made of them."""

    eval_set: parity.EvalSet
    batch: parity.Batch
    figures: parity.Reference


def torch_reference(model: Any, tokenizer: Any, options: ExportOptions) -> Reference:
    eval_set = parity.load_eval_set(options.dataset, tokenizer, options.n_prompts)
    batch = _padded(tokenizer, eval_set)
    return Reference(eval_set, batch, parity.torch_reference(model, batch, options.thresholds.greedy_tokens))


def _padded(tokenizer: Any, prompts: parity.EvalSet) -> parity.Batch:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    return parity.left_pad(prompts.prompts, int(pad))


def _int8(model: Any, tokenizer: Any, fp32: Path, prepared: Reference, options: ExportOptions, work: ModelLayout,
          say: Any) -> tuple[Path, dict[str, Any]]:
    """All-int8 first; under the top-1 target, the matmuls that cost the most stay fp32 (builder/model/mixed_int8)."""
    out, scratch, target = work.onnx_int8, work.root / "untied", options.thresholds.top1_target

    def measure(kept: tuple[str, ...]) -> dict[str, Any]:
        onnx_graph.quantize_int8(fp32, out, scratch, tuple(nodes[m] for m in kept), options.external_data_above)
        return _check(model.config, "int8", out / onnx_graph.MODEL_FILE, prepared, options)

    nodes: dict[str, str] = {}
    figures = measure(())
    all_int8, kept, calibration, share = figures["top1_agreement"], list[str](), None, 0.0
    if all_int8 < target and options.int8_fp32_share > 0:
        say(f"int8 top-1 agreement {all_int8:.1%} is under {target:.0%}: ranking the matmuls")
        prompts = parity.load_eval_set(options.dataset, tokenizer, options.n_prompts, split="train",
                                       fixed=mixed_int8.CALIBRATION_PROMPTS)
        calibration = prompts.source if prompts.source != "fixed" else "calibration prompts (builder/model/mixed_int8)"
        ranked = mixed_int8.rank_linears(model, _padded(tokenizer, prompts))
        nodes = mixed_int8.matmul_nodes(model, onnx_graph.untied(fp32).graph, fp32.parent)
        chosen = mixed_int8.candidates(ranked, nodes, options.int8_fp32_share)
        if not chosen:
            say(f"no matmul fits --int8-fp32-share {options.int8_fp32_share:g}: the graph stays all-int8")
        kept, figures = mixed_int8.search(chosen, measure, target, figures)
        share = mixed_int8.weight_share(ranked, nodes, kept)
        if kept:
            say(f"int8 with {', '.join(kept)} in fp32: top-1 agreement {figures['top1_agreement']:.1%}")
    figures.update(fp32_matmuls=kept, fp32_weight_share=round(share, 4), all_int8_top1_agreement=all_int8,
                   calibration=calibration)
    _copy_side_files(fp32.parent, out, mixed_int8.describe(kept))
    return out / onnx_graph.MODEL_FILE, figures


def _check(config: Any, variant: str, path: Path, prepared: Reference, options: ExportOptions) -> dict[str, Any]:
    # int8 on one thread: its figures choose which graph ships, and equal inputs must choose the same one
    threads = 1 if variant == "int8" else None
    session = parity.OrtModel(path, onnx_graph.CacheShape.of(config), threads=threads,
                              providers=parity.providers(options.device))
    return parity.check_variant(variant, session, prepared.batch, prepared.figures, options.thresholds,
                                gate=variant == "fp32").as_dict()


def check_parity(config: Any, prepared: Reference, graphs: dict[str, Path], options: ExportOptions,
                 checked: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """parity.json's content: per variant (the model's config tells the cache's shape) the figures, thresholds and
    verdict; fp32 alone gates. `checked` holds variants whose figures are already known."""
    variants = {variant: (checked or {}).get(variant) or _check(config, variant, path, prepared, options)
                for variant, path in graphs.items()}
    eval_set = prepared.eval_set
    return {"passed": bool(variants["fp32"]["passed"]), "eval_set": eval_set.source,
            "prompt_tokens": [len(p) for p in eval_set.prompts], "variants": variants,
            # folder names, not local paths, and the build's clock: the same inputs write the same file
            "base_model": options.base_model.name, "adapter": options.adapter.name if options.adapter else None,
            "versions": parity.versions(), "checked_at": _checked_at()}


def _checked_at() -> str:
    return source_date.stamp()[0].isoformat(timespec="seconds")


def _record(options: ExportOptions, run_id: str, started: datetime, report: dict[str, Any],
            built: dict[str, Path], status: str, swap: Any = None) -> None:
    """The export run, what it read, and one model_artifact (+ files) per variant, committed with the swap."""
    if options.catalog is None:
        if swap is not None:
            swap()
        return
    from registry.catalog import models
    from registry.catalog.connection import open_catalog
    from registry.catalog.generation import RunInfo

    base_artifact = models.hash_directory(options.base_model)
    base = models.describe_base_model(options.base_model, base_artifact)
    inputs = [models.RunInput("external_model", base.model_ref, "base"),
              models.RunInput("model_artifact", base_artifact.artifact_id, "base")]
    parent = base.model_ref
    if options.adapter is not None:
        parent = models.hash_directory(options.adapter).artifact_id
        inputs.append(models.RunInput("model_artifact", parent, "adapter"))
    artifacts = [models.ModelArtifact(ARTIFACT_KINDS[variant], ModelLayout(options.out).variant(variant),
                                      models.hash_directory(folder), base.model_ref, parent, "onnx",
                                      report["variants"].get(variant))
                 for variant, folder in built.items()]
    params = {"base_model": str(options.base_model), "adapter": str(options.adapter) if options.adapter else None,
              "int4": options.int4, "int8": options.int8, "device": options.device,
              "thresholds": options.thresholds.__dict__, "n_prompts": options.n_prompts,
              "int8_fp32_share": options.int8_fp32_share}
    info = RunInfo(generator="torch.onnx.dynamo", params=params, random_seed=0, prompt_template_sha256=None,
                   stage="export")
    with open_catalog(options.catalog) as con:
        calibration = (report["variants"].get("int8") or {}).get("calibration") or ""
        inputs += _dataset_inputs(con, options, parent, calibrated=calibration.startswith("dataset:"))
        run = models.ModelRun(run_id, info, started, status, report, inputs, artifacts, [base])
        models.record_model_run(con, run, before_commit=swap)


def _dataset_inputs(con: Any, options: ExportOptions, adapter_id: str, calibrated: bool) -> list[Any]:
    """The parity prompts' test split, the train split when it chose int8's fp32 matmuls, and the datasets the
    adapter was trained on (so a takedown of a training sample reaches the ONNX models too: takedown_impact
    follows run_input rows of kind dataset)."""
    from registry.catalog import models

    found = []
    splits = {"eval": "test.jsonl", **({"int8 calibration": "train.jsonl"} if calibrated else {})}
    for role, name in splits.items():
        split = options.dataset / name if options.dataset is not None else None
        if split is not None and split.is_file():
            sha = models.file_sha256(split)
            if sha in models.recorded_datasets(con, [sha]):
                found.append(models.RunInput("dataset", sha, role))
    if options.adapter is not None:
        rows = con.execute("SELECT DISTINCT ri.input_id, ri.role FROM model_artifact ma JOIN run_input ri "
                           "ON ri.run_id = ma.run_id AND ri.input_kind = 'dataset' WHERE ma.artifact_id = ?",
                           [adapter_id]).fetchall()
        found += [models.RunInput("dataset", dataset_id, f"{role} (through the adapter)")
                  for dataset_id, role in rows]
    return found


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
