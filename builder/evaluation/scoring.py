"""Scoring on onnxruntime, over an exported folder (the graph that ships): for each item, the log-likelihood of
each continuation (the reference, or every choice of a multiple-choice item) and a greedy answer.

Each batch of prompts is prefilled once. From that one KV cache the continuations are scored (the cache rows
repeated per choice, every choice's tokens in one call, right-padded), and the greedy answers are decoded. Nothing
of a prompt is computed twice, whatever the number of choices. Log-likelihoods are summed in float64 from the
graph's float32 logits, as lm-evaluation-harness does with PyTorch's. Imported lazily (numpy, onnxruntime,
transformers for the tokenizer and chat template).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.model import chat_data
from builder.model.onnx_graph import MODEL_FILE, CacheShape
from registry.errors import RegistryError
from registry.model_folder import ModelFolder

LOGITS_BUDGET = 64 << 20  # bytes of float32 logits one call may return


@dataclass(frozen=True, slots=True)
class Encoded:
    """An item in tokens: its prompt (as the chat template renders it, ready for the answer) and continuations."""

    prompt: tuple[int, ...]
    continuations: tuple[tuple[int, ...], ...]  # the reference alone, or every choice
    reference: int  # which continuation is the reference
    truncated: bool = False  # the prompt lost its start, or a continuation its end, to fit the context window


@dataclass(slots=True)
class Scored:
    logprobs: list[float]  # summed log-likelihood of each continuation
    tokens: list[int]  # tokens of each continuation
    answer: list[int] = field(default_factory=list)  # greedy tokens, without the end-of-turn token


class Tokenizer:
    """The exported folder's tokenizer and chat template (both models of an evaluation must share them)."""

    def __init__(self, folder: Path) -> None:
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        self.context = int(ModelFolder.read(folder).config.get("max_position_embeddings") or 2048)
        self.eos = _eos_ids(folder, self.tokenizer)
        pad = self.tokenizer.pad_token_id
        self.pad = int(pad if pad is not None else next(iter(self.eos), 0))

    def encode(self, messages: list[dict[str, str]], continuations: list[str], reference: int,
               room: int) -> Encoded:
        """`room`: tokens kept free after the prompt for the greedy answer. What does not fit the context window is
        cut: a continuation longer than half the window keeps its first half-window of tokens, then the prompt
        loses its start (`truncated` says so)."""
        pieces = [self._continuation(messages, text) for text in continuations]
        prefix = pieces[0][0]
        if any(p != prefix for p, _ in pieces):
            raise RegistryError("the chat template renders the prompt differently depending on the answer, so the "
                                "choices cannot be scored from one prompt", hint="evaluate a model whose template "
                                                                                 "marks {% generation %}")
        budget = self.context - 1
        cut = [c if len(prefix) + len(c) <= budget else c[:budget // 2] for _, c in pieces]
        keep = max(1, budget - max(*(len(c) for c in cut), room))
        truncated = len(prefix) > keep or any(len(c) < len(p) for c, (_, p) in zip(cut, pieces, strict=True))
        return Encoded(tuple(prefix[-keep:]), tuple(tuple(c) for c in cut), reference, truncated)

    def decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True)).strip()

    def _continuation(self, messages: list[dict[str, str]], text: str) -> tuple[list[int], list[int]]:
        """(prompt ids, the answer's ids: the tokens the template marks as the assistant's, end of turn included)."""
        ids, mask = chat_data.token_mask(self.tokenizer, [*messages, {"role": "assistant", "content": text}])
        start = mask.index(1) if 1 in mask else len(ids)
        end = start
        while end < len(mask) and mask[end]:
            end += 1
        return ids[:start], ids[start:end] or [next(iter(self.eos), self.pad)]


class Scorer:
    """One exported model on onnxruntime."""

    def __init__(self, folder: Path, threads: int | None = 1) -> None:
        from builder.model.parity import OrtModel

        config = ModelFolder.read(folder, hint="pass an exported folder (taxreg export)").config
        path = folder / MODEL_FILE
        if not path.is_file():
            raise RegistryError(f"{path} is missing: not an exported model folder",
                                hint="export the model with `taxreg export`")
        shape = CacheShape(int(config["num_hidden_layers"]), int(config["num_key_value_heads"]),
                           int(config["head_dim"]))
        self.model = OrtModel(path, shape, threads=threads)
        self.vocab = int(config.get("vocab_size") or 1)
        self.context = int(config.get("max_position_embeddings") or 2048)

    def score(self, items: list[Encoded], max_new_tokens: int, eos: frozenset[int], pad: int) -> list[Scored]:
        """Every item, in batches of similar prompt length; results in the order given."""
        order = sorted(range(len(items)), key=lambda i: (len(items[i].prompt), i))
        results: dict[int, Scored] = {}
        for batch in self._batches([items[i] for i in order], order):
            results.update(zip(batch, self._batch([items[i] for i in batch], max_new_tokens, eos, pad), strict=True))
        return [results[i] for i in range(len(items))]

    def _batches(self, ordered: list[Encoded], order: list[int]) -> list[list[int]]:
        """Consecutive items whose logits (prompt rows, then one row per continuation) fit LOGITS_BUDGET."""
        batches: list[list[int]] = [[]]
        used = 0
        for item, index in zip(ordered, order, strict=True):
            width = max(len(item.prompt), *(len(c) for c in item.continuations))
            cost = (1 + len(item.continuations)) * width * self.vocab * 4
            if batches[-1] and used + cost > LOGITS_BUDGET:
                batches.append([])
                used = 0
            batches[-1].append(index)
            used += cost
        return [b for b in batches if b]

    def _batch(self, items: list[Encoded], max_new_tokens: int, eos: frozenset[int], pad: int) -> list[Scored]:
        from builder.model.parity import left_pad

        prompts = left_pad([list(i.prompt) for i in items], pad)
        logits, past = self.model(prompts.input_ids, prompts.attention_mask, prompts.position_ids,
                                  self.model.empty_past(len(items)))
        last = logits[:, -1, :]
        lengths = prompts.attention_mask.sum(axis=1)
        scored = self._continuations(items, last, past, prompts.attention_mask, lengths, pad)
        answers = self._greedy(last, past, prompts.attention_mask, prompts.position_ids, max_new_tokens, eos)
        for result, answer in zip(scored, answers, strict=True):
            result.answer = answer
        return scored

    def _continuations(self, items: list[Encoded], last: Any, past: list[Any], mask: Any, lengths: Any,
                       pad: int) -> list[Scored]:
        """Every continuation of every item in one call, from the prompts' cache."""
        import numpy as np

        rows = [(b, c) for b, item in enumerate(items) for c in item.continuations]
        owner = np.asarray([b for b, _ in rows], dtype=np.int64)
        width = max(len(c) for _, c in rows)
        ids = np.full((len(rows), width), pad, dtype=np.int64)
        real = np.zeros((len(rows), width), dtype=np.int64)
        for r, (_, tokens) in enumerate(rows):
            ids[r, :len(tokens)] = tokens
            real[r, :len(tokens)] = 1
        feed_mask = np.concatenate([mask[owner], real], axis=1)
        # a short row's padding would run past the position table (RoPE's cache): its outputs are never read
        positions = np.minimum(lengths[owner][:, None] + np.arange(width)[None, :], self.context - 1).astype(np.int64)
        logits, _ = self.model(ids, feed_mask, positions, [p[owner] for p in past])
        # the first token is predicted by the prompt's last position, the others by the token before them
        steps = np.concatenate([last[owner][:, None, :], logits[:, :-1, :]], axis=1)
        totals = token_logprobs(steps, ids, real)
        out: list[Scored] = []
        r = 0
        for item in items:
            n = len(item.continuations)
            out.append(Scored([float(totals[r + k]) for k in range(n)],
                              [len(item.continuations[k]) for k in range(n)]))
            r += n
        return out

    def _greedy(self, last: Any, past: list[Any], mask: Any, pos: Any, max_new_tokens: int,
                eos: frozenset[int]) -> list[list[int]]:
        import numpy as np

        batch = len(last)
        answers: list[list[int]] = [[] for _ in range(batch)]
        done = np.zeros(batch, dtype=bool)
        position = pos[:, -1:]
        for step in range(max_new_tokens):
            token = last.argmax(-1).astype(np.int64)
            for b in np.flatnonzero(~done):
                if int(token[b]) in eos:
                    done[b] = True
                else:
                    answers[b].append(int(token[b]))
            if done.all() or step == max_new_tokens - 1:
                break
            mask = np.concatenate([mask, np.ones((batch, 1), dtype=np.int64)], axis=1)
            position = position + 1
            logits, past = self.model(np.ascontiguousarray(token[:, None]), mask, position, past)
            last = logits[:, -1, :]
        return answers


def token_logprobs(steps: Any, ids: Any, real: Any) -> Any:
    """Summed log-probability of `ids` under `steps` logits ([rows, len, vocab]) over the real positions:
    log_softmax(logits)[token] = logit[token] - max - log(sum(exp(logits - max))), the sum taken in float64."""
    import numpy as np

    rows, cols = np.nonzero(real)
    logits = steps[rows, cols]  # [tokens, vocab]: padding never reaches the softmax
    top = logits.max(axis=-1, keepdims=True)
    norm = np.log(np.exp(logits - top).sum(axis=-1, dtype=np.float64))
    picked = logits[np.arange(len(rows)), ids[rows, cols]].astype(np.float64) - top[:, 0]
    return np.bincount(rows, weights=picked - norm, minlength=len(real))


def _eos_ids(folder: Path, tokenizer: Any) -> frozenset[int]:
    import json

    found: set[int] = set()
    try:
        generation = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        generation = {}
    for value in (generation.get("eos_token_id"), tokenizer.eos_token_id):
        found.update(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int))
    return frozenset(found)
