"""`taxreg model init`: the embedded demo base model, built without a model hub.

A small Granite-architecture model with random weights and a byte-level BPE tokenizer trained on the taxonomy's
own text (seed examples and knowledge documents, less what the catalog's takedown table names), with a chat
template that marks assistant turns. With a catalog, the run is recorded with every leaf and document it read, so
`takedown_impact` reaches the base model. Everything
follows from the seed: the same taxonomy and seed give byte-identical safetensors and tokenizer files. It learns
(loss falls) but its answers mean nothing: it is labeled a demo model in config.json and its card.

Imported lazily by the CLI (torch, transformers, tokenizers).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from builder.generators.seed import SYSTEM_PROMPT
from builder.model import chat_template
from registry import __version__
from registry.config import ValidationConfig
from registry.discovery import discover, require_taxonomy
from registry.documents import DocumentResolver
from registry.errors import RegistryError
from registry.folders import building, check_output_folder, swap_into_place, write_json
from registry.leaf import read_leaf
from registry.model_folder import CONFIG, DEMO_MARK, DEMO_NAME, ModelFolder

EMBEDDING_STD = 0.25
EOS_ID = chat_template.SPECIAL_TOKENS.index(chat_template.END_OF_TEXT)  # the BPE trainer numbers them first, in order
PAD_ID = chat_template.SPECIAL_TOKENS.index(chat_template.PAD)


@dataclass(frozen=True, slots=True)
class DemoSpec:
    """The architecture and tokenizer size; the defaults give ~4M parameters (Granite 3.x multipliers)."""

    hidden: int = 256
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 768
    vocab: int = 4096
    context: int = 2048
    rope_theta: float = 10000.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if min(self.hidden, self.layers, self.heads, self.kv_heads, self.intermediate, self.context) <= 0:
            problems.append("sizes must be positive")
        elif self.hidden % self.heads:
            problems.append(f"--hidden {self.hidden} is not a multiple of --heads {self.heads}")
        elif self.heads % self.kv_heads:
            problems.append(f"--heads {self.heads} is not a multiple of --kv-heads {self.kv_heads}")
        elif self.head_dim % 2:
            problems.append(f"--hidden {self.hidden} / --heads {self.heads} gives a head size of {self.head_dim}; "
                            "rotary position embeddings need an even one")
        if not 300 <= self.vocab <= 262_144:
            problems.append(f"--vocab {self.vocab} must be within 300..262144 (256 bytes + special tokens + merges)")
        if self.seed < 0:
            problems.append("--seed must be >= 0")
        if problems:
            raise RegistryError("invalid demo model size: " + "; ".join(problems),
                                hint="see `taxreg model init --help` for the defaults")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads


@dataclass(frozen=True, slots=True)
class InitOutcome:
    out: Path
    parameters: int
    vocab_size: int
    corpus_texts: int
    corpus_sha256: str
    skipped_leaves: int
    safetensors_sha256: str


@dataclass(frozen=True, slots=True)
class Corpus:
    texts: list[str]
    skipped_leaves: int  # leaves whose qna.yaml did not pass the schema (their text is left out)
    contributions: tuple[str, ...] = ()  # the leaves whose text it holds (taxonomy paths)
    documents: tuple[str, ...] = ()  # the documents whose text it holds (sha256)
    taken_down: int = 0  # leaves and documents left out because they were taken down

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for text in self.texts:
            digest.update(text.encode("utf-8") + b"\0")
        return digest.hexdigest()


def init_demo_model(taxonomy: Path, out: Path, spec: DemoSpec, config: ValidationConfig | None = None,
                    force: bool = False, catalog: Path | None = None, build_id: str | None = None) -> InitOutcome:
    """Build the demo model into `out` (written beside it, then renamed into place). With `catalog`, taken-down
    leaves and documents stay out of the tokenizer's text, and the run is recorded with what it read."""
    _check_out(out, force)
    started = datetime.now(UTC)
    corpus = taxonomy_corpus(taxonomy, config or ValidationConfig(), _taken_down(catalog))
    if not corpus.texts:
        raise RegistryError(f"the taxonomy {taxonomy} holds no readable text to train a tokenizer on",
                            hint="run `taxreg validate` and fix the leaves, or pass another --taxonomy")
    with building(out) as work:
        tokenizer = build_tokenizer(corpus.texts, spec)
        parameters = _write_model(work, tokenizer, spec)
        _write_tokenizer(work, tokenizer, spec)
        _write_card(work, spec, parameters, len(tokenizer), corpus, taxonomy)
        if catalog is None:
            swap_into_place((work, out))
        else:
            _record_run(catalog, work, out, spec, corpus, (started, build_id))
    weights = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    return InitOutcome(out, parameters, len(tokenizer), len(corpus.texts), corpus.sha256, corpus.skipped_leaves,
                       weights)


def taxonomy_corpus(taxonomy: Path, config: ValidationConfig, excluded: frozenset[str] = frozenset()) -> Corpus:
    """The taxonomy's text in a fixed order: per leaf its description, seeds, then documents (each once).
    `excluded`: taken-down contribution ids and document sha256s, whose text is left out."""
    require_taxonomy(taxonomy)
    found = discover(taxonomy)
    resolver = DocumentResolver(config.documents(taxonomy))
    texts = [SYSTEM_PROMPT]
    leaves: list[str] = []
    seen_documents: dict[str, None] = {}
    dropped: set[str] = set()
    skipped = 0
    for leaf in sorted(found.leaves, key=lambda f: f.contribution_id):
        if leaf.contribution_id in excluded:
            dropped.add(leaf.contribution_id)
            continue
        version = read_leaf(leaf, config).version
        if version is None:
            skipped += 1
            continue
        leaves.append(leaf.contribution_id)
        texts += [t for t in (version.task_description, version.document_outline) if t]
        for seed in version.seeds:
            texts += [t for t in (seed.context, seed.question, seed.answer) if t]
        for resolved in resolver.resolve(version).documents:
            sha = resolved.document.doc_sha256
            if sha in excluded:
                dropped.add(sha)
            elif resolved.text and sha not in seen_documents:
                seen_documents[sha] = None
                texts.append(resolved.text)
    return Corpus(texts, skipped, tuple(leaves), tuple(seen_documents), len(dropped))


def _taken_down(catalog: Path | None) -> frozenset[str]:
    """Every subject of the catalog's takedown table (contribution ids and document sha256s)."""
    if catalog is None or not catalog.is_file():
        return frozenset()
    from registry.catalog.builds import takedown_subjects
    from registry.catalog.connection import open_read_only

    with open_read_only(catalog) as con:
        return frozenset(takedown_subjects(con))


def _record_run(catalog: Path, work: Path, out: Path, spec: DemoSpec, corpus: Corpus,
                when: tuple[datetime, str | None]) -> None:
    """The init run (stage `init`), the leaves and documents its tokenizer read, the base artifact; `work` is
    renamed into place inside the transaction, so the catalog never names a model that is not there."""
    from registry.catalog.connection import open_catalog
    from registry.catalog.generation import RunInfo, new_run_id
    from registry.catalog.models import (
        ModelArtifact,
        ModelRun,
        RunInput,
        describe_base_model,
        hash_directory,
        record_model_run,
    )

    artifact = hash_directory(work)
    base = describe_base_model(work, artifact)
    started, build_id = when
    inputs = [RunInput("contribution", c, "tokenizer") for c in corpus.contributions]
    inputs += [RunInput("document", d, "tokenizer") for d in corpus.documents]
    run = ModelRun(new_run_id(), RunInfo(generator="taxreg-demo", params=asdict(spec), random_seed=spec.seed,
                                         prompt_template_sha256=None, stage="init", build_id=build_id),
                   started, "succeeded",
                   {"corpus_texts": len(corpus.texts), "corpus_sha256": corpus.sha256,
                    "skipped_leaves": corpus.skipped_leaves, "taken_down_left_out": corpus.taken_down},
                   inputs, [ModelArtifact("base", out, artifact, base.model_ref, None, "safetensors")], [base])
    with open_catalog(catalog) as con:
        record_model_run(con, run, before_commit=lambda: swap_into_place((work, out)))


def build_tokenizer(texts: list[str], spec: DemoSpec) -> Any:
    """A byte-level BPE (any byte sequence encodes; no unknown token) wrapped as PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)  # offsets stay exact: the assistant mask
    trainer = trainers.BpeTrainer(vocab_size=spec.vocab, min_frequency=2, show_progress=False,
                                  special_tokens=list(chat_template.SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token=chat_template.END_OF_TEXT, eos_token=chat_template.END_OF_TEXT,
        pad_token=chat_template.PAD, model_max_length=spec.context, chat_template=chat_template.CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False)


def granite_config(spec: DemoSpec, vocab_size: int) -> Any:
    from transformers import GraniteConfig

    values: dict[str, Any] = dict(
        vocab_size=vocab_size, hidden_size=spec.hidden, intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers, num_attention_heads=spec.heads, num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.context, rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta},
        tie_word_embeddings=True,
        # Granite 3.x multipliers (MODEL.md); attention scales by 1/head_dim like granite-3.x-2b (head_dim 64)
        embedding_multiplier=12.0, residual_multiplier=0.22, attention_multiplier=1.0 / spec.head_dim,
        logits_scaling=8.0, bos_token_id=EOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID, dtype="float32")
    values[DEMO_MARK] = True
    values["taxreg_demo"] = {"seed": spec.seed, "built_by": f"taxreg {__version__}"}
    return GraniteConfig(**values)


def _write_model(work: Path, tokenizer: Any, spec: DemoSpec) -> int:
    import torch
    from transformers import GenerationConfig, GraniteForCausalLM
    from transformers.utils import logging as hf_logging

    config = granite_config(spec, len(tokenizer))
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(spec.seed)  # the weights follow from the seed alone
        model = GraniteForCausalLM(config).eval()
        with torch.no_grad():
            # Tied output: logits = norm(h) . E / logits_scaling. At the usual std 0.02 they span < 1 nat, which
            # LoRA (that leaves E alone) cannot widen; at 0.25 a few LoRA steps visibly lower the loss.
            model.get_input_embeddings().weight.normal_(0.0, EMBEDDING_STD)
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config = GenerationConfig(bos_token_id=EOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
                                               max_new_tokens=128)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the shard-writing bar is noise for a 15 MB file
    try:
        model.save_pretrained(work, safe_serialization=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    (work / "model.safetensors").chmod(0o644)  # written as a private temp file; a model folder is for sharing
    config_path = work / CONFIG
    saved = json.loads(config_path.read_text(encoding="utf-8"))
    saved["rope_theta"] = spec.rope_theta  # transformers 5 keeps it in rope_parameters only; older readers need it
    write_json(config_path, saved)
    return sum(p.numel() for p in model.parameters())


def _write_tokenizer(work: Path, tokenizer: Any, spec: DemoSpec) -> None:
    tokenizer.save_pretrained(work)
    path = work / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "PreTrainedTokenizerFast"  # transformers 5 writes TokenizersBackend; older reject it
    config["chat_template"] = chat_template.CHAT_TEMPLATE
    config["model_max_length"] = spec.context
    for runtime_only in ("is_local", "local_files_only"):
        config.pop(runtime_only, None)
    write_json(path, config)
    write_json(work / "special_tokens_map.json", {
        "bos_token": chat_template.END_OF_TEXT, "eos_token": chat_template.END_OF_TEXT,
        "pad_token": chat_template.PAD,
        "additional_special_tokens": [chat_template.START_OF_ROLE, chat_template.END_OF_ROLE]})


def _write_card(work: Path, spec: DemoSpec, parameters: int, vocab_size: int, corpus: Corpus,
                taxonomy: Path) -> None:
    sizes = json.dumps(asdict(spec), sort_keys=True)
    card = f"""---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
tags: [taxreg, demo, granite, random-weights]
---

# {DEMO_NAME} (DEMO MODEL)

**This is a demo model.** Its weights are random (seed {spec.seed}); training moves its loss, but its answers
carry no meaning. It exists so that `taxreg train`, `taxreg export` and `taxreg serve` run end to end on any
laptop without a model hub. For real use, pass `--base-model` with a local Hugging Face model folder.

- Architecture: Granite (`GraniteForCausalLM`), {parameters:,} parameters, hidden {spec.hidden}, {spec.layers} layers,
  {spec.heads} attention heads, {spec.kv_heads} KV heads, tied embeddings, context {spec.context}, Granite 3.x
  multipliers.
- Tokenizer: byte-level BPE, {vocab_size:,} tokens, trained on the text of the taxonomy `{taxonomy.name}`
  ({len(corpus.texts)} texts, sha256 {corpus.sha256}).
- Chat format: Granite 3.x role markers; assistant turns are marked for assistant-only loss.
- Built by `taxreg model init` (taxreg {__version__}) with `{sizes}`.
"""
    (work / "README.md").write_text(card, encoding="utf-8")


def _check_out(out: Path, force: bool) -> None:
    check_output_folder(out, "--out", lambda folder: force or ModelFolder.lenient(folder).is_demo,
                        "a taxreg demo model", "pass another --out, or --force to replace it")
