"""The same numbers as `scoring.Scorer`, from a plain PyTorch loop: one item and one continuation at a time, the
whole sequence through the model with no cache, greedy answers one full forward per token. It is what the ONNX
scores are checked against (tests, bench/eval.py): the same log-likelihoods within 1e-4, the same answers.
Imported lazily (torch).
"""

from __future__ import annotations

from typing import Any

from builder.evaluation.scoring import Encoded, Scored, token_logprobs


def torch_scores(model: Any, items: list[Encoded], max_new_tokens: int, eos: frozenset[int]) -> list[Scored]:
    import torch

    with torch.no_grad():
        return [_item(model, item, max_new_tokens, eos) for item in items]


def _item(model: Any, item: Encoded, max_new_tokens: int, eos: frozenset[int]) -> Scored:
    import numpy as np
    import torch

    prompt = list(item.prompt)
    logprobs = []
    for continuation in item.continuations:
        ids = torch.tensor([prompt + list(continuation)])
        logits = model(input_ids=ids).logits[0].float().numpy()
        steps = logits[len(prompt) - 1:len(prompt) - 1 + len(continuation)]
        tokens = np.asarray([continuation], dtype=np.int64)
        logprobs.append(float(token_logprobs(steps[None], tokens, np.ones_like(tokens))[0]))
    answer: list[int] = []
    sequence = prompt
    for _ in range(max_new_tokens):
        token = int(model(input_ids=torch.tensor([sequence])).logits[0, -1].argmax())
        if token in eos:
            break
        answer.append(token)
        sequence = [*sequence, token]
    return Scored(logprobs, [len(c) for c in item.continuations], answer)
