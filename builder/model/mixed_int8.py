"""Mixed int8: when all-int8 misses its top-1 target, the few matmuls that cause it stay fp32.

onnxruntime's dynamic int8 quantizes each matmul's input per tensor. When a layer's input carries a few huge
channels (the "massive activations" of trained transformers, typically an early MLP's down projection), the step
size swallows every other channel. On the trained demo model one such matmul (of 29) took teacher-forced top-1
agreement from 99.7% to 93.9%.

Ranking: leave-one-in fake quantization in PyTorch. Each Linear in turn gets onnxruntime's int8 rounding (input
per tensor, asymmetric uint8; weight per tensor, symmetric int8) and is scored by the mean squared logit error it
causes on calibration prompts: the dataset's train split, or prompts of their own (never the parity ones). Above
PRESELECT Linears, one pass first keeps the PRESELECT largest local output errors, so the cost stays at
PRESELECT + 2 forward passes. Two limits: prompts are scored in prefill only (a decode step quantizes its one
token's input with its own scale), and the fake rounding is exact, while u8s8 kernels on CPUs without VNNI
saturate int16 pairs (onnxruntime's reduce_range exists for that).

Choosing: the ranked matmuls stay fp32 one more at a time, within a weight budget, until the graph's top-1
agreement on the parity prompts (the test split) reaches the target; the best graph is kept. So the ranking is
calibrated on train, but how many to keep is decided on the set that reports the figure. Imported lazily.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.model.parity import Batch

PRESELECT = 32          # Linears scored by a full forward pass each
LIMIT = 8               # at most this many matmuls stay fp32 (and this many trial graphs are built)
NEGLIGIBLE = 100        # a Linear scoring under 1/100 of the worst does not move the logits
# Calibration prompts of their own, so the parity prompts (parity.FIXED_PROMPTS) never choose what they measure.
CALIBRATION_PROMPTS = (
    "Describe how a bicycle gear works.",
    "List four kinds of clouds.",
    "Why do leaves change color in autumn?",
    "Translate 'good morning' into French.",
    "What does a librarian do?",
    "Give two tips for writing clear emails.",
    "How far is the Moon from the Earth?",
    "Explain what a prime number is.",
)


@dataclass(frozen=True)
class Sensitivity:
    module: str                     # the Linear's name in the PyTorch model, e.g. model.layers.0.mlp.down_proj
    weights: int                    # its parameter count
    logit_mse: float                # mean squared logit error when only this Linear is int8


def rank_linears(model: Any, batch: Batch) -> list[Sensitivity]:
    """Every Linear, the most harmful in int8 first (ties keep the model's order: the ranking is deterministic).
    Those the preselection left out score 0."""
    import torch

    ids, mask, pos = (torch.from_numpy(a) for a in (batch.input_ids, batch.attention_mask, batch.position_ids))
    inputs, real = (ids, mask, pos), mask.bool()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one summation order: equal inputs choose the same matmuls, byte for byte
    try:
        with torch.no_grad():
            scored = _preselected(model, inputs)
            clean = _logits(model, inputs)[real]
            scores = [Sensitivity(name, module.weight.numel(),
                                  float((_logits(model, inputs, module)[real] - clean).pow(2).mean())
                                  if name in scored else 0.0)
                      for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    finally:
        torch.set_num_threads(threads)
    return sorted(scores, key=lambda s: -s.logit_mse)


def _preselected(model: Any, inputs: tuple[Any, Any, Any]) -> set[str]:
    """Every Linear, or above PRESELECT of them the PRESELECT whose int8 output moves most (one forward pass)."""
    import torch

    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    if len(linears) <= PRESELECT:
        return {name for name, _ in linears}
    local: dict[str, float] = {}

    def recorder(name: str) -> Any:
        def record(mod: Any, args: tuple[Any, ...], output: Any) -> None:
            local[name] = float((_int8_linear(mod, args[0]) - output).pow(2).mean())
        return record

    hooks = [module.register_forward_hook(recorder(name)) for name, module in linears]
    try:
        _logits(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return {name for name, _ in sorted(linears, key=lambda item: -local.get(item[0], 0.0))[:PRESELECT]}


def _logits(model: Any, inputs: tuple[Any, Any, Any], int8: Any = None) -> Any:
    """The model's logits, with `int8` (a Linear) computed in fake int8 when given."""
    hook = int8.register_forward_hook(lambda mod, args, output: _int8_linear(mod, args[0])) if int8 else None
    try:
        ids, mask, pos = inputs
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
    finally:
        if hook is not None:
            hook.remove()


def _int8_linear(module: Any, x: Any) -> Any:
    import torch.nn.functional as F

    return F.linear(fake_uint8(x), fake_int8(module.weight), module.bias)


def fake_uint8(x: Any) -> Any:
    """DynamicQuantizeLinear and back: one asymmetric uint8 scale for the whole tensor, 0 exactly representable."""
    import torch

    low, high = torch.clamp(x.min(), max=0), torch.clamp(x.max(), min=0)
    scale = (high - low) / 255
    if float(scale) == 0.0:
        return x
    zero = torch.round(-low / scale).clamp(0, 255)
    return (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale


def fake_int8(weight: Any) -> Any:
    """quantize_dynamic's QInt8 weights: symmetric, one scale per tensor."""
    import torch

    scale = weight.abs().max() / 127
    return weight if float(scale) == 0.0 else torch.round(weight / scale).clamp(-127, 127) * scale


def matmul_nodes(model: Any, graph: Any, base_dir: Path | None = None) -> dict[str, str]:
    """Linear name -> the ONNX MatMul node that reads its weight (stored transposed), matched by content. Linears
    with equal weights pair with equal-weight nodes in order; a Linear the graph does not hold is left out.
    `base_dir`: where weights in external data are read from, one at a time."""
    import torch
    from onnx import numpy_helper

    by_content: dict[str, list[str]] = {}
    for name, module in model.named_modules():  # Linears only: a tied head's table is the embedding's too
        if isinstance(module, torch.nn.Linear):
            by_content.setdefault(_digest(module.weight.detach().T.contiguous().numpy()), []).append(name)
    initializers = {init.name: init for init in graph.initializer if len(init.dims) == 2}
    found: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in initializers:
            waiting = by_content.get(_digest(numpy_helper.to_array(initializers[node.input[1]], str(base_dir or ""))))
            if waiting:
                found[waiting.pop(0)] = node.name
    return found


def _digest(array: Any) -> str:
    return hashlib.sha256(f"{array.dtype}{array.shape}".encode() + array.tobytes()).hexdigest()


def candidates(ranked: list[Sensitivity], nodes: dict[str, str], share: float) -> list[Sensitivity]:
    """The most harmful Linears with a MatMul in the graph, in rank order, while their weights fit in `share` of
    the graph's matmul weights; at most LIMIT, and none under 1/NEGLIGIBLE of the worst one's score."""
    present = [s for s in ranked if s.module in nodes]
    budget = share * sum(s.weights for s in present)
    worst = present[0].logit_mse if present else 0.0
    chosen: list[Sensitivity] = []
    for sensitivity in present:
        if len(chosen) == LIMIT or sensitivity.logit_mse <= 0.0 or sensitivity.logit_mse < worst / NEGLIGIBLE:
            break
        if sum(s.weights for s in chosen) + sensitivity.weights <= budget:
            chosen.append(sensitivity)
    return chosen


def search(chosen: list[Sensitivity], measure: Callable[[tuple[str, ...]], dict[str, Any]], target: float,
           start: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Keep `chosen` in fp32 one more at a time until `measure(kept)` (which builds that graph and returns its
    parity figures) reaches `target` top-1 agreement. Returns the best prefix and its figures; `start` are the
    all-int8 figures. The graph left in place is the best one."""
    best: list[str] = []
    figures, tried = start, []
    for sensitivity in chosen:
        tried.append(sensitivity.module)
        trial = measure(tuple(tried))
        if trial["top1_agreement"] > figures["top1_agreement"]:
            best, figures = list(tried), trial
        if trial["top1_agreement"] >= target:
            break
    if tried and best != tried:  # the last trial is in place, not the best one
        figures = measure(tuple(best))
    return best, figures


def weight_share(ranked: list[Sensitivity], nodes: dict[str, str], kept: list[str]) -> float:
    """The share of the graph's matmul weights that `kept` holds."""
    total = sum(s.weights for s in ranked if s.module in nodes)
    return sum(s.weights for s in ranked if s.module in kept) / total if total else 0.0


def describe(kept: list[str]) -> str:
    """The quantization line of config.json."""
    if not kept:
        return "int8 (onnxruntime quantize_dynamic)"
    return f"int8 (onnxruntime quantize_dynamic; kept in fp32: {', '.join(kept)})"
