"""The parity gate: an exported graph must compute what the PyTorch model computes.

One left-padded batch of evaluation prompts goes through PyTorch (prefill, then greedy decode with its KV cache)
and through onnxruntime twice: teacher-forced on PyTorch's tokens (max |logit difference| and top-1 agreement
on every real position, prefill and decode) and free-running (its own greedy continuation must equal PyTorch's).
Imported lazily (torch, numpy, onnxruntime).
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from builder.model.onnx_graph import CacheShape

# When the dataset has no such split: fixed chat prompts, so every export is checked on the same inputs.
FIXED_PROMPTS = (
    "What is a taxonomy?",
    "Explain in one sentence what photosynthesis does.",
    "Write a haiku about rivers.",
    "Where do chickadees live?",
    "Summarize the rules of chess briefly.",
    "What is 12 times 7?",
    "Name three primary colors.",
    "How does a printing press work?",
)


@dataclass(frozen=True)
class Thresholds:
    max_abs_diff: float = 1e-4      # fp32 gate
    top1_target: float = 0.95       # int8: recorded against this target, never fails the export
    greedy_tokens: int = 32


@dataclass(frozen=True)
class EvalSet:
    prompts: list[list[int]]
    source: str                     # "dataset:<path>" or "fixed"


@dataclass
class Batch:
    """A left-padded batch: what both runtimes receive."""

    input_ids: Any                  # int64 [B, S]
    attention_mask: Any             # int64 [B, S]
    position_ids: Any               # int64 [B, S]


@dataclass
class Reference:
    prefill_logits: Any             # float32 [B, S, V]
    step_logits: list[Any]          # per decode step float32 [B, V]
    tokens: Any                     # int64 [B, N]: greedy continuation, the first from the prefill


@dataclass
class VariantResult:
    variant: str
    gate: bool                      # a failing gated variant fails the export
    max_abs_diff: float
    prefill_max_abs_diff: float
    decode_max_abs_diff: float
    top1_agreement: float
    greedy_identical: bool
    greedy_identical_prompts: int
    n_prompts: int
    n_tokens: int
    thresholds: dict[str, Any] = field(default_factory=dict)
    passed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_eval_set(dataset_dir: Path | None, tokenizer: Any, n_prompts: int = 8, max_prompt_tokens: int = 48,
                  split: str = "test", fixed: tuple[str, ...] = FIXED_PROMPTS) -> EvalSet:
    """The first prompts of a dataset split (the conversation up to its last user turn), else `fixed` ones. The
    split is read (JSONL, else Parquet) and checked as `taxreg train` reads it: a malformed row names its line."""
    from builder.model import chat_data
    from registry.catalog.models import file_sha256

    conversations: list[list[dict[str, str]]] = []
    files = [dataset_dir / f"{split}.{fmt}" for fmt in ("jsonl", "parquet")] if dataset_dir else []
    split_file = next((f for f in files if f.is_file()), None)
    if split_file is not None:
        rows = chat_data.read_conversations(chat_data.SplitFile(split, split_file, file_sha256(split_file),
                                                                split_file.suffix[1:]))
        for messages in rows:
            last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
            if last_user >= 0:
                conversations.append(messages[:last_user + 1])
            if len(conversations) == n_prompts:
                break
    # the folder and file name, not a local path
    source = f"dataset:{split_file.parent.name}/{split_file.name}" if split_file and conversations else "fixed"
    if not conversations:
        conversations = [[{"role": "user", "content": text}] for text in fixed[:n_prompts]]
    prompts = []
    for messages in conversations:
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        else:
            text = "\n".join(m["content"] for m in messages)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        prompts.append(list(ids[-max_prompt_tokens:]) or [0])
    return EvalSet(prompts, source)


def left_pad(prompts: list[list[int]], pad_id: int) -> Batch:
    import numpy as np

    width = max(len(p) for p in prompts)
    ids = np.full((len(prompts), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(prompts), width), dtype=np.int64)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = prompt
        mask[row, width - len(prompt):] = 1
    return Batch(ids, mask, np.clip(mask.cumsum(-1) - 1, 0, None).astype(np.int64))


def torch_reference(model: Any, batch: Batch, n_tokens: int) -> Reference:
    """PyTorch prefill and greedy decode with its cache (the same position/mask rules as the graph gets)."""
    import torch

    ids, mask, pos = (torch.from_numpy(a) for a in (batch.input_ids, batch.attention_mask, batch.position_ids))
    threads = torch.get_num_threads()
    # One thread, one summation order: with two, about 1 `taxreg export` in 6 drew logits 2e-4 away from the
    # usual ones (trained demo model, same weights), over the 1e-4 gate; 0 in 24 with one.
    torch.set_num_threads(1)
    try:
        return _reference(model, ids, mask, pos, n_tokens)
    finally:
        torch.set_num_threads(threads)


def _reference(model: Any, ids: Any, mask: Any, pos: Any, n_tokens: int) -> Reference:
    import numpy as np
    import torch

    steps: list[Any] = []
    tokens: list[Any] = []
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
        prefill = out.logits.float().numpy()
        cache, last = out.past_key_values, out.logits[:, -1, :]
        for _ in range(n_tokens - 1):
            token = last.argmax(-1, keepdim=True)
            tokens.append(token)
            mask = torch.cat([mask, torch.ones_like(token)], dim=1)
            pos = pos[:, -1:] + 1
            out = model(input_ids=token, attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True)
            cache, last = out.past_key_values, out.logits[:, -1, :]
            steps.append(last.float().numpy())
        tokens.append(last.argmax(-1, keepdim=True))
    return Reference(prefill, steps, np.concatenate([t.numpy() for t in tokens], axis=1))


def providers(device: str) -> list[Any]:
    """onnxruntime's providers for `device`; cuda without onnxruntime-gpu's CUDA provider is an error."""
    import onnxruntime as ort

    from registry.errors import EnvironmentProblem

    if device == "cpu":
        return ["CPUExecutionProvider"]
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise EnvironmentProblem(f"--device cuda: this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider "
                                 f"(it offers {', '.join(available)})",
                                 hint="install the gpu extra in its own environment (README, \"Export and parity\"), "
                                      "or use --device cpu")
    # TF32 matmuls would cost the fp32 gate its 1e-4: the gate compares full fp32 arithmetic
    return [("CUDAExecutionProvider", {"use_tf32": "0"}), "CPUExecutionProvider"]


class OrtModel:
    """An onnxruntime session over the contract's I/O: one call = prefill (empty past) or a decode step."""

    def __init__(self, path: Path, shape: CacheShape, threads: int | None = 1, providers: list[Any] | None = None
                 ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        self.shape = shape
        # onnxruntime-genai's graphs derive positions from the mask and take no position_ids
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.past_names = shape.past_names()  # built once: a decode step is well under a millisecond on small models
        self.outputs = ["logits", *self.present_names]

    def empty_past(self, batch: int) -> list[Any]:
        import numpy as np

        empty = np.zeros((batch, self.shape.kv_heads, 0, self.shape.head_dim), dtype=np.float32)
        return [empty] * (2 * self.shape.layers)

    def __call__(self, ids: Any, mask: Any, pos: Any, past: list[Any]) -> tuple[Any, list[Any]]:
        feed = dict(zip(self.past_names, past, strict=True))
        feed["input_ids"], feed["attention_mask"] = ids, mask
        if "position_ids" in self.inputs:
            feed["position_ids"] = pos
        outputs = self.session.run(self.outputs, feed)
        return outputs[0], outputs[1:]

    @property
    def present_names(self) -> list[str]:
        return [name.replace("past_key_values", "present") for name in self.shape.past_names()]


def _ort_decode(model: OrtModel, batch: Batch, n_tokens: int, forced: Any | None) -> tuple[Any, list[Any], Any]:
    """Prefill then n_tokens - 1 decode steps, feeding `forced` tokens (teacher forcing) or its own argmax."""
    import numpy as np

    mask, pos = batch.attention_mask, batch.position_ids
    logits, past = model(batch.input_ids, mask, pos, model.empty_past(len(mask)))
    prefill, last = logits, logits[:, -1, :]
    steps, tokens = [], []
    for step in range(n_tokens - 1):
        token = forced[:, step:step + 1] if forced is not None else last.argmax(-1)[:, None].astype(np.int64)
        tokens.append(last.argmax(-1)[:, None].astype(np.int64))
        mask = np.concatenate([mask, np.ones_like(token)], axis=1)
        pos = pos[:, -1:] + 1
        logits, past = model(np.ascontiguousarray(token), mask, pos, past)
        last = logits[:, -1, :]
        steps.append(last)
    tokens.append(last.argmax(-1)[:, None].astype(np.int64))
    return prefill, steps, np.concatenate(tokens, axis=1)


def check_variant(variant: str, model: OrtModel, batch: Batch, ref: Reference, thresholds: Thresholds, gate: bool
                  ) -> VariantResult:
    import numpy as np

    n_tokens = ref.tokens.shape[1]
    prefill, steps, forced_top1 = _ort_decode(model, batch, n_tokens, ref.tokens)
    real = batch.attention_mask.astype(bool)  # pad positions' logits mean nothing: compare real tokens only
    prefill_diff = float(np.abs(prefill - ref.prefill_logits)[real].max())
    decode_diff = max((float(np.abs(a - b).max()) for a, b in zip(steps, ref.step_logits, strict=True)), default=0.0)
    ref_top1 = np.concatenate([ref.prefill_logits.argmax(-1)[real], ref.tokens.reshape(-1)])
    ort_top1 = np.concatenate([prefill.argmax(-1)[real], forced_top1.reshape(-1)])
    agreement = float((ref_top1 == ort_top1).mean())
    _, _, greedy = _ort_decode(model, batch, n_tokens, None)
    same_rows = int((greedy == ref.tokens).all(axis=1).sum())
    max_diff = max(prefill_diff, decode_diff)
    if gate:
        limits = {"max_abs_diff": thresholds.max_abs_diff, "greedy_identical": True}
        passed = max_diff <= thresholds.max_abs_diff and same_rows == len(greedy)
    else:
        limits = {"top1_agreement": thresholds.top1_target}
        passed = agreement >= thresholds.top1_target
    return VariantResult(variant, gate, max_diff, prefill_diff, decode_diff, agreement, same_rows == len(greedy),
                         same_rows, len(greedy), n_tokens, limits, passed)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("torch", "transformers", "peft", "onnx", "onnxscript", "onnxruntime", "onnxruntime-gpu",
                 "onnxruntime-genai", "tokenizers"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
