"""Mixed int8: when all-int8 misses its top-1 target, the few matmuls that cause it stay fp32.

onnxruntime's dynamic int8 quantizes each matmul's input per tensor. When a layer's input carries a few huge
channels (the "massive activations" of trained transformers, typically an early MLP's down projection), the step
size swallows every other channel. On the trained demo model one such matmul (of 29) took teacher-forced top-1
agreement from 99.7% to 93.9%.

The culprits are found by leave-one-in fake quantization in PyTorch: each Linear in turn gets onnxruntime's int8
rounding (input per tensor, asymmetric uint8; weight per tensor, symmetric int8) and is scored by the mean squared
logit error it causes on calibration prompts. Those come from the dataset's train split, while the parity
figures come from the test split, so the choice is not fitted to the set that measures it. Imported lazily
(torch, onnx).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from builder.model.parity import Batch


@dataclass(frozen=True)
class Sensitivity:
    module: str                     # the Linear's name in the PyTorch model, e.g. model.layers.0.mlp.down_proj
    weights: int                    # its parameter count
    logit_mse: float                # mean squared logit error when only this Linear is int8


def rank_linears(model: Any, batch: Batch) -> list[Sensitivity]:
    """Every Linear, the most harmful in int8 first (ties keep the model's order: the ranking is deterministic)."""
    import torch

    ids, mask, pos = (torch.from_numpy(a) for a in (batch.input_ids, batch.attention_mask, batch.position_ids))
    real = mask.bool()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one summation order: equal inputs choose the same matmuls, byte for byte
    try:
        with torch.no_grad():
            clean = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[real]
            scores = [Sensitivity(name, module.weight.numel(),
                                  _score(model, module, (ids, mask, pos), real, clean))
                      for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    finally:
        torch.set_num_threads(threads)
    return sorted(scores, key=lambda s: -s.logit_mse)


def _score(model: Any, module: Any, inputs: tuple[Any, Any, Any], real: Any, clean: Any) -> float:
    import torch.nn.functional as F

    def int8_rounded(mod: Any, args: tuple[Any, ...], output: Any) -> Any:
        return F.linear(_fake_uint8(args[0]), _fake_int8(mod.weight), mod.bias)

    hook = module.register_forward_hook(int8_rounded)
    try:
        ids, mask, pos = inputs
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[real]
    finally:
        hook.remove()
    return float((logits - clean).pow(2).mean())


def _fake_uint8(x: Any) -> Any:
    """DynamicQuantizeLinear and back: one asymmetric uint8 scale for the whole tensor, 0 exactly representable."""
    import torch

    low, high = torch.clamp(x.min(), max=0), torch.clamp(x.max(), min=0)
    scale = (high - low) / 255
    if float(scale) == 0.0:
        return x
    zero = torch.round(-low / scale).clamp(0, 255)
    return (torch.clamp(torch.round(x / scale) + zero, 0, 255) - zero) * scale


def _fake_int8(weight: Any) -> Any:
    """quantize_dynamic's QInt8 weights: symmetric, one scale per tensor."""
    import torch

    scale = weight.abs().max() / 127
    return weight if float(scale) == 0.0 else torch.round(weight / scale).clamp(-127, 127) * scale


def matmul_nodes(model: Any, graph: Any) -> dict[str, str]:
    """Linear name -> the ONNX MatMul node that reads its weight (stored transposed), matched by content."""
    import torch
    from onnx import numpy_helper

    by_content: dict[str, str] = {}
    for name, module in model.named_modules():  # Linears only: a tied head's table is the embedding's too
        if isinstance(module, torch.nn.Linear):
            by_content.setdefault(_digest(module.weight.detach().T.contiguous().numpy()), name)
    initializers = {init.name: init for init in graph.initializer if len(init.dims) == 2}
    found: dict[str, str] = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] in initializers:
            module = by_content.get(_digest(numpy_helper.to_array(initializers[node.input[1]])))
            if module is not None:
                found.setdefault(module, node.name)
    return found


def _digest(array: Any) -> str:
    return hashlib.sha256(f"{array.dtype}{array.shape}".encode() + array.tobytes()).hexdigest()


def candidates(ranked: list[Sensitivity], nodes: dict[str, str], share: float, limit: int = 8) -> list[Sensitivity]:
    """The most harmful Linears with a MatMul in the graph, in rank order, while their weights fit in `share` of
    all matmuls' weights. Only those within a factor 100 of the worst: the rest do not move the logits."""
    present = [s for s in ranked if s.module in nodes]
    budget = share * sum(s.weights for s in present)
    worst = present[0].logit_mse if present else 0.0
    chosen: list[Sensitivity] = []
    for sensitivity in present:
        if len(chosen) == limit or sensitivity.logit_mse <= 0.0 or sensitivity.logit_mse < worst / 100:
            break
        if sum(s.weights for s in chosen) + sensitivity.weights <= budget:
            chosen.append(sensitivity)
    return chosen


def describe(kept: list[str]) -> str:
    """The quantization line of config.json."""
    if not kept:
        return "int8 (onnxruntime quantize_dynamic)"
    return f"int8 (onnxruntime quantize_dynamic; kept in fp32: {', '.join(kept)})"
