"""The evaluation set: per contribution, questions no training sample holds, with their reference answers.

Drawn deterministically from the dataset folder and the catalog:

- `test`: every test-split sample of the contribution (the conversation up to its last user turn; the reference
  is the assistant turn after it);
- `seed`: every seed example of its current version whose own sample (the one the seed generator makes of it:
  same system prompt, same user turn) is in neither split; with the seed generator every seed is a sample, so
  this adds the seeds of a teacher-generated dataset, whose seeds were only shown to the teacher;
- `closed_book`: a knowledge seed's question without its context, for every knowledge seed whose sample is not in
  the train split: what the model recalls of the document without being handed the passage;
- `guard`: the general-ability guard set shipped with the project (guard_v1.jsonl), no contribution's.

Knowledge items are also multiple choice: the reference and up to 3 distractors drawn from the other answers of
the same leaf (and so of its document), in an order seeded by the item. An item is identified like a sample
(sha256 of its canonical messages), so one that equals a training sample is found by its id: a test or guard item
in the train split is an error naming the ids; a seed's item is left out (it was trained on).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.generators.seed import SYSTEM_PROMPT, user_turn
from builder.model import chat_data
from registry.catalog import evaluation
from registry.errors import RegistryError
from registry.samples import Sample, near_key

GUARD_FILE = Path(__file__).parent / "guard_v1.jsonl"
GUARD_VERSION = "guard_v1"
DISTRACTORS = 3
SHOWN = 8  # ids named in an error


class EvalLeak(RegistryError):
    """An evaluation item is also a training sample."""


@dataclass(frozen=True, slots=True)
class EvalItem:
    item_id: str  # sha256 of the canonical messages, prompt and reference (as a sample id)
    contribution_id: str | None  # None: the guard set
    kind: str  # knowledge | compositional_skill | foundational_skill | guard
    domain: str | None
    source: str  # test | seed | closed_book | guard
    prompt: tuple[tuple[str, str], ...]  # (role, content) turns up to the last user turn
    reference: str
    sample_id: str | None = None
    seed_id: str | None = None
    choices: tuple[str, ...] = ()
    correct: int | None = None

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.prompt]

    @property
    def question(self) -> str:
        return next((c for r, c in reversed(self.prompt) if r == "user"), "")

    def canonical(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "contribution_id": self.contribution_id, "source": self.source,
                "prompt": [list(p) for p in self.prompt], "reference": self.reference,
                "choices": list(self.choices), "correct": self.correct}


@dataclass(slots=True)
class EvalSet:
    items: list[EvalItem]
    contributions: list[evaluation.ContributionRow]
    dataset_sha256: str | None  # the test split's file hash
    left_out: dict[str, int] = field(default_factory=dict)  # why seed items were not asked -> how many

    @property
    def sha256(self) -> str:
        text = json.dumps([i.canonical() for i in self.items], sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def empty(self) -> list[str]:
        """Contributions without a single item: nothing can be said about them."""
        have = {i.contribution_id for i in self.items}
        return [c.contribution_id for c in self.contributions if c.contribution_id not in have]


def build_eval_set(con: Any, dataset: Path, seed: int) -> EvalSet:
    files = chat_data.dataset_files(dataset)
    train_rows = chat_data.read_rows(files["train"])
    train = {sid for sid, _ in train_rows if sid}
    near = {near_key(Sample.make(messages, "", [])) for _, messages in train_rows}
    test = [(sid, messages) for sid, messages in chat_data.read_rows(files["test"])] if "test" in files else []
    contributions = {c.contribution_id: c for c in evaluation.active_contributions(con)}
    seeds = evaluation.current_seeds(con)
    items = _test_items(con, test, contributions)
    _refuse_leaks("test-split samples", [i.item_id for i in items if i.item_id in train])
    left_out: dict[str, int] = defaultdict(int)
    taken = {i.item_id for i in items} | {sid for sid, _ in test if sid}
    trained: set[str] = set()  # seeds whose own sample (or a near duplicate) is a training sample
    for item in _seed_items(seeds, contributions):  # each seed's item comes before its closed-book one
        reason = "in the train split" if item.item_id in train else "a near duplicate of a training sample" \
            if _near(item) in near else "its seed's sample is in the train split" \
            if item.source == "closed_book" and item.seed_id in trained else "already a test item" \
            if item.item_id in taken else None
        if item.source == "seed" and reason in ("in the train split", "a near duplicate of a training sample"):
            trained.add(item.seed_id or "")
        if reason is not None:
            left_out[f"{item.source}: {reason}"] += 1
            continue
        taken.add(item.item_id)
        items.append(item)
    guard = guard_items()
    _refuse_leaks(f"guard items ({GUARD_FILE.name})",
                  [i.item_id for i in guard if i.item_id in train or _near(i) in near])
    with_choices = _multiple_choice(items, seeds, seed) + [_shuffled(i, seed) for i in guard]
    ordered = sorted(with_choices, key=lambda i: (i.contribution_id or "", i.source, i.item_id))
    return EvalSet(ordered, list(contributions.values()), files["test"].sha256 if "test" in files else None,
                   dict(left_out))


def guard_items() -> list[EvalItem]:
    items = []
    for line in GUARD_FILE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        prompt = _prompt(row["question"], None)
        items.append(EvalItem(_item_id(prompt, row["answer"]), None, "guard", None, "guard", prompt, row["answer"],
                              choices=(row["answer"], *row["distractors"]), correct=0))
    return items


def _test_items(con: Any, test: list[tuple[str | None, list[dict[str, str]]]],
                contributions: dict[str, evaluation.ContributionRow]) -> list[EvalItem]:
    origins = evaluation.sample_origins(con, [sid for sid, _ in test if sid])
    items = []
    for sample_id, messages in test:
        split = _split(messages)
        if sample_id is None or split is None:
            continue
        prompt, reference = split
        for contribution_id, seed_id in origins.get(sample_id, []):
            c = contributions.get(contribution_id)
            if c is not None:
                items.append(EvalItem(sample_id, c.contribution_id, c.kind, c.domain, "test", prompt, reference,
                                      sample_id=sample_id, seed_id=seed_id))
    return items


def _seed_items(seeds: list[evaluation.SeedQuestion], contributions: dict[str, evaluation.ContributionRow]
                ) -> list[EvalItem]:
    items = []
    for s in seeds:
        c = contributions.get(s.contribution_id)
        if c is None:
            continue
        answer = s.answer.strip()
        prompt = _prompt(s.question, s.context)
        items.append(EvalItem(_item_id(prompt, answer), c.contribution_id, c.kind, c.domain, "seed", prompt, answer,
                              seed_id=s.seed_id))
        if c.kind == "knowledge" and s.context:
            closed = _prompt(s.question, None)
            items.append(EvalItem(_item_id(closed, answer), c.contribution_id, c.kind, c.domain, "closed_book",
                                  closed, answer, seed_id=s.seed_id))
    return items


def _prompt(question: str, context: str | None) -> tuple[tuple[str, str], ...]:
    """The turns the seed generator writes before a seed's answer."""
    return (("system", SYSTEM_PROMPT), ("user", user_turn(question, context)))


def _near(item: EvalItem) -> str:
    return near_key(Sample.make([*item.messages, {"role": "assistant", "content": item.reference}], "", []))


def _item_id(prompt: tuple[tuple[str, str], ...], reference: str) -> str:
    messages = [{"role": r, "content": c} for r, c in prompt] + [{"role": "assistant", "content": reference}]
    return Sample.make(messages, "", []).sample_id


def _split(messages: list[dict[str, str]]) -> tuple[tuple[tuple[str, str], ...], str] | None:
    """(the turns up to the last user turn, the assistant answer after it), or None without one."""
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=-1)
    after = messages[last_user + 1:] if last_user >= 0 else []
    if not after or after[0]["role"] != "assistant":
        return None
    return tuple((m["role"], m["content"]) for m in messages[:last_user + 1]), after[0]["content"]


def _refuse_leaks(what: str, leaked: list[str]) -> None:
    if not leaked:
        return
    shown = ", ".join(sorted(leaked)[:SHOWN]) + (f" and {len(leaked) - SHOWN} more" if len(leaked) > SHOWN else "")
    raise EvalLeak(f"{len(leaked)} {what} of the evaluation set are also in the train split: {shown}",
                   hint="a model cannot be evaluated on what it was trained on: rebuild the dataset with "
                        "`taxreg dataset build` (its splits never share a sample) and train again")


def _multiple_choice(items: list[EvalItem], seeds: list[evaluation.SeedQuestion], seed: int) -> list[EvalItem]:
    """Knowledge items get the reference and distractors from the other answers of the same leaf (its seeds'
    answers and its items' references: one leaf, one document)."""
    answers: dict[str, list[str]] = defaultdict(list)
    for s in seeds:
        answers[s.contribution_id].append(s.answer.strip())
    for item in items:
        if item.contribution_id is not None:
            answers[item.contribution_id].append(item.reference.strip())
    chosen = []
    for item in items:
        pool = sorted({a for a in answers.get(item.contribution_id or "", []) if _norm(a) != _norm(item.reference)})
        if item.kind != "knowledge" or not pool:
            chosen.append(item)
            continue
        picked = sorted(pool, key=lambda a: _digest(seed, item.item_id, "distractor", a))[:DISTRACTORS]
        chosen.append(_shuffled(EvalItem(**{**_fields(item), "choices": (item.reference, *picked), "correct": 0}),
                                seed))
    return chosen


def _shuffled(item: EvalItem, seed: int) -> EvalItem:
    """The choices in an order drawn from the item and the seed (the reference is not always first)."""
    order = sorted(range(len(item.choices)), key=lambda k: _digest(seed, item.item_id, "order", item.choices[k]))
    assert item.correct is not None
    return EvalItem(**{**_fields(item), "choices": tuple(item.choices[k] for k in order),
                       "correct": order.index(item.correct)})


def _fields(item: EvalItem) -> dict[str, Any]:
    return {name: getattr(item, name) for name in EvalItem.__slots__}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _digest(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
