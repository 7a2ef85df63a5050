"""The served model: one onnxruntime session over an exported folder, and a KV-cache decode loop with sampling.

It reads only the ONNX directory contract (README, "Export"): `model.onnx` with inputs `input_ids`,
`attention_mask`, `position_ids`, `past_key_values.{i}.key|value` and outputs `logits`, `present.{i}.key|value`,
beside `config.json`, `generation_config.json` and the tokenizer files. No torch.

One graph serves prefill (an empty past) and decode (one token per step). The `n` choices of a request share the
prompt's prefill and then decode as one batch, rows leaving as they finish. onnxruntime runs one session from
many threads at once, so requests decode side by side, one thread each (the server bounds how many).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from builder.layout import DEFAULT, ModelLayout
from builder.serve import Device
from builder.serve.text import ModelDirError, StopText, TextCodec, read_json
from registry.errors import EnvironmentProblem, RegistryError
from registry.model_folder import CONFIG

GPU_HINT = ("install the GPU runtime in its own environment: pip install 'taxonomy-registry[gpu]' (onnxruntime-gpu "
            "replaces onnxruntime; never both)")
NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


class PromptTooLong(RegistryError):
    """The prompt leaves no room in the model's context window."""


class EmptyPrompt(RegistryError):
    """The prompt holds no tokens."""


class BadSampling(RegistryError):
    """Sampling settings no decoder can follow."""


@dataclass(frozen=True, slots=True)
class Sampling:
    """How one request samples. temperature 0 is greedy; `seed` makes the choices repeatable."""

    max_tokens: int | None = None  # None: until EOS, a stop string or the end of the context window
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    n: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.top_p <= 1:  # no token holds a mass of 0: nothing could be sampled
            raise BadSampling(f"top_p must be above 0 and at most 1, not {self.top_p:g}",
                              hint="e.g. 0.9; 1 keeps every token")


class Delta(NamedTuple):
    choice: int  # the index of the choice
    text: str


class Finished(NamedTuple):
    choice: int
    reason: str  # "stop" (EOS or a stop string) or "length"
    tokens: int  # completion tokens of this choice


Event = Delta | Finished


@dataclass(slots=True)
class Completion:
    """The collected result of one prompt: texts, finish reasons and token counts per choice."""

    prompt_tokens: int
    texts: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)


class Engine:
    """A loaded model folder. Thread-safe: `generate` may run in many threads at once."""

    def __init__(self, model_dir: Path, device: Device = Device.AUTO, threads: int | None = None) -> None:
        self.model_dir = model_dir
        self.config = _model_config(model_dir)
        self.codec = TextCodec(model_dir)
        self.session, self.provider = _session(model_dir / "model.onnx", device, threads)
        self.context_window = _context_window(model_dir, self.config)
        # No token covers more characters than the vocabulary's longest entry (byte-level vocabularies spell one
        # byte per character), so longer text cannot fit and is refused before the tokenizer spends time on it.
        # Four times that leaves room for normalizers that merge characters.
        longest = max(map(len, self.codec.tokenizer.get_vocab(with_added_tokens=True)), default=1)
        self.max_prompt_chars = 4 * longest * self.context_window
        self.layers = _layers(self.session)
        # onnxruntime-genai's int4 graphs take no position_ids: they derive positions from attention_mask
        self.takes_positions = "position_ids" in {i.name for i in self.session.get_inputs()}
        past = {i.name: i for i in self.session.get_inputs()}["past_key_values.0.key"]
        self.past_shape = self._past_shape(past.shape)
        self.past_dtype = NUMPY_TYPES.get(past.type, np.float32)
        self.eos = self._eos_ids()

    def prompt_ids(self, text: str) -> list[int]:
        if len(text) > self.max_prompt_chars:
            raise PromptTooLong(f"the prompt has {len(text)} characters, more than this model's context window of "
                                f"{self.context_window} tokens can hold", hint="shorten the prompt or the conversation")
        ids = self.codec.encode(text)
        if not ids:
            raise EmptyPrompt("the prompt is empty", hint="send some text")
        if len(ids) >= self.context_window:
            raise PromptTooLong(
                f"the prompt has {len(ids)} tokens; this model's context window is {self.context_window} tokens, "
                f"so a prompt may have at most {self.context_window - 1}",
                hint="shorten the prompt or the conversation")
        return ids

    def complete(self, ids: list[int], sampling: Sampling, cancelled: Callable[[], bool] = bool) -> Completion:
        result = Completion(len(ids), [""] * sampling.n, ["stop"] * sampling.n, [0] * sampling.n)
        for event in self.generate(ids, sampling, cancelled):
            if isinstance(event, Delta):
                result.texts[event.choice] += event.text
            else:
                result.reasons[event.choice], result.tokens[event.choice] = event.reason, event.tokens
        return result

    def generate(self, ids: list[int], sampling: Sampling, cancelled: Callable[[], bool] = bool) -> Iterator[Event]:
        """Text deltas of each choice as it is decoded, then its Finished; stops early when `cancelled()`."""
        room = self.context_window - len(ids)
        limit = min(sampling.max_tokens or room, room)
        rngs = [np.random.default_rng(None if sampling.seed is None else [sampling.seed & 0xFFFFFFFFFFFFFFFF, i])
                for i in range(sampling.n)]
        texts = [StopText(self.codec, sampling.stop) for _ in range(sampling.n)]
        logits, past = self._step(np.asarray([ids], dtype=np.int64), self._empty_past(), 0)
        logits, past = logits.repeat(sampling.n, axis=0), [p.repeat(sampling.n, axis=0) for p in past]
        rows, length = list(range(sampling.n)), len(ids)
        while rows and not cancelled():
            tokens, keep = [], []
            for position, choice in enumerate(rows):
                token = _sample(logits[position], sampling, rngs[choice])
                text = texts[choice]
                reason = "stop" if token in self.eos else None
                if reason is None:
                    delta = text.push(token)
                    if delta:
                        yield Delta(choice, delta)
                    reason = "stop" if text.stopped else ("length" if len(text.ids) >= limit else None)
                if reason is None:
                    tokens.append(token)
                    keep.append(position)
                    continue
                rest = text.finish()
                if rest:
                    yield Delta(choice, rest)
                yield Finished(choice, reason, len(text.ids) + (reason == "stop" and not text.stopped))
            if len(keep) < len(rows):
                rows = [rows[p] for p in keep]
                past = [p[keep] for p in past]
            if rows:
                logits, past = self._step(np.asarray(tokens, dtype=np.int64)[:, None], past, length)
                length += 1

    def _step(self, input_ids: np.ndarray, past: list[np.ndarray], past_length: int) -> tuple[np.ndarray, list[Any]]:
        batch, seq = input_ids.shape
        feed: dict[str, np.ndarray] = {
            "input_ids": input_ids, "attention_mask": np.ones((batch, past_length + seq), dtype=np.int64)}
        if self.takes_positions:
            feed["position_ids"] = np.broadcast_to(np.arange(past_length, past_length + seq, dtype=np.int64),
                                                   (batch, seq)).copy()
        for i in range(self.layers):
            feed[f"past_key_values.{i}.key"], feed[f"past_key_values.{i}.value"] = past[2 * i], past[2 * i + 1]
        outputs = self.session.run(None, feed)
        return outputs[0][:, -1, :], outputs[1:]

    def _empty_past(self) -> list[np.ndarray]:
        heads, dim = self.past_shape
        return [np.zeros((1, heads, 0, dim), dtype=self.past_dtype) for _ in range(2 * self.layers)]

    def _past_shape(self, shape: list[Any]) -> tuple[int, int]:
        """(kv heads, head dim): fixed in the graph by our exporter; else from config.json."""
        heads = shape[1] if isinstance(shape[1], int) else self.config.get("num_key_value_heads")
        dim = shape[3] if isinstance(shape[3], int) else self.config.get("head_dim")
        if not isinstance(heads, int) or not isinstance(dim, int):
            raise ModelDirError(f"{self.model_dir / 'config.json'}: num_key_value_heads and head_dim are needed",
                                hint="export the model again with `taxreg export`")
        return heads, dim

    def _eos_ids(self) -> frozenset[int]:
        generation = read_json(self.model_dir / "generation_config.json")
        found: set[int] = set()
        for value in (generation.get("eos_token_id"), self.config.get("eos_token_id"),
                      self.codec.token_id(self.codec.special["eos_token"])):
            found.update(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int))
        return frozenset(found)


def _sample(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    if sampling.temperature == 0:
        return int(np.argmax(logits))
    with np.errstate(over="ignore"):  # tiny temperatures overflow float64: that case is greedy, below
        scaled = logits.astype(np.float64) / sampling.temperature
        top = scaled.max()
        if not np.isfinite(top):  # the limit of ever smaller temperatures: all the mass on the top token
            return int(np.argmax(logits))
        probs = np.exp(scaled - top)
    probs /= probs.sum()
    if sampling.top_p < 1.0:  # the smallest set of most likely tokens whose mass reaches top_p
        order = np.argsort(-probs, kind="stable")
        kept = order[:int(np.searchsorted(np.cumsum(probs[order]), sampling.top_p)) + 1]
        return int(kept[rng.choice(len(kept), p=probs[kept] / probs[kept].sum())])
    return int(rng.choice(len(probs), p=probs))


def _session(path: Path, device: Device, threads: int | None) -> tuple[Any, str]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise EnvironmentProblem("onnxruntime is not installed",
                                 hint="pip install 'taxonomy-registry[onnx]' (or [gpu] for CUDA)") from None
    if not path.is_file():
        raise ModelDirError(f"{path} is missing: not an exported model folder",
                            hint="pass the folder holding model.onnx, e.g. build/model/onnx or build/model/onnx-int8")
    available = ort.get_available_providers()
    cuda = "CUDAExecutionProvider" in available
    if device is Device.CUDA and not cuda:
        raise EnvironmentProblem(f"--device cuda: this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider "
                                 f"(it offers {', '.join(available)})", hint=GPU_HINT)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: the graph's shape-inference notes are not the user's business
    wanted = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda and device is not Device.CPU else \
        ["CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(path), options, providers=wanted)
    except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable graphs
        raise ModelDirError(f"{path}: onnxruntime cannot load it ({exc})", hint="export the model again") from None
    provider = session.get_providers()[0]
    if device is Device.CUDA and provider != "CUDAExecutionProvider":
        raise EnvironmentProblem("--device cuda: the CUDA provider did not start (no GPU or CUDA libraries?)",
                                 hint="check `nvidia-smi`, or use --device cpu")
    return session, provider


def _layers(session: Any) -> int:
    names = {i.name for i in session.get_inputs()}
    missing = {"input_ids", "attention_mask", "past_key_values.0.key"} - names
    if missing:
        raise ModelDirError(f"model.onnx lacks the inputs {', '.join(sorted(missing))}: not a KV-cache export",
                            hint="export it with `taxreg export`")
    return sum(1 for name in names if name.startswith("past_key_values.") and name.endswith(".key"))


def _context_window(model_dir: Path, config: dict[str, Any]) -> int:
    value = config.get("max_position_embeddings")
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
        problem = "is missing" if value is None else f"must be a whole number of at least 2, not {value!r}"
        raise ModelDirError(f"{model_dir / 'config.json'}: max_position_embeddings {problem}",
                            hint="export the model again with `taxreg export`")
    return value


def _model_config(model_dir: Path) -> dict[str, Any]:
    if not (model_dir / CONFIG).is_file():
        exported = ModelLayout(model_dir)  # a model folder given instead of one of its variants
        hint = f"pass {exported.onnx} or {exported.onnx_int8} (a variant's folder, as {DEFAULT.model.onnx} is)" \
            if exported.onnx.is_dir() else \
            "export the model with `taxreg export`"
        raise ModelDirError(f"{model_dir}: no {CONFIG} (not an exported model folder)", hint=hint)
    return read_json(model_dir / CONFIG)
