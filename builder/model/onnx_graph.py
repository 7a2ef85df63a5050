"""One ONNX graph with a KV cache (prefill and decode), its int8 quantization, and the optional genai int4 build.

The I/O names are the ONNX directory contract that `taxreg serve` reads: inputs `input_ids`, `attention_mask`
(past + seq long), `position_ids` (below max_position_embeddings: RoPE reads a table of that length),
`past_key_values.{i}.key|value` [batch, kv_heads, past, head_dim]; outputs `logits` and `present.{i}.key|value`.
An empty past (length 0) is a prefill. The graph uses onnxruntime's contrib ops (SimplifiedLayerNormalization,
RotaryEmbedding): it is meant for onnxruntime. Imported lazily (torch, onnx).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import disks
from registry.errors import EnvironmentProblem, RegistryError

MODEL_FILE = "model.onnx"
# The families this export is tested on (tests/test_families.py), by config.json's model_type. Each is a decoder of
# RMSNorm, RoPE, (grouped-query) attention and a gated MLP; their differences are handled by transformers' own
# modules as traced: head_dim apart from hidden/heads, QK-norm (qwen3), q/k/v bias (qwen2), Granite's multipliers,
# tied or untied LM heads, and sliding windows (mistral, qwen2), whose mask the trace applies over a full cache.
# onnxruntime-genai's builder makes int4 of all of them.
FAMILIES = {"granite": "Granite", "llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3"}
# RoPE whose frequencies are fixed: rotary tables computed once for every position. "dynamic" and "longrope"
# change with the sequence length, which one traced graph cannot follow.
ROPE_TYPES = ("default", "llama3")
# Bytes of graph past which the weights stay in model.onnx.data beside model.onnx. Under it the file is whole
# (the demo, tests' tiny models); over it (every model of realistic size, and all past protobuf's 2 GB limit) no step
# of the export holds a serialized copy of the weights.
EXTERNAL_DATA_ABOVE = 256 * 2**20
DATA_FILE = f"{MODEL_FILE}.data"
INLINE_UP_TO = 4096  # bytes: tensors this small stay in the graph, where fuse_rotary reads inv_freq


def check_family(config: Any, where: Path) -> None:
    """Refuse a model this export cannot trace into the contract, naming its family, before anything loads."""
    model_type = config.get("model_type")
    if model_type not in FAMILIES:
        architectures = ", ".join(map(str, config.get("architectures") or [])) or "no architectures listed"
        raise RegistryError(f"{where}: model_type {model_type!r} ({architectures}) is a family taxreg's ONNX export "
                            f"does not handle; it handles {', '.join(FAMILIES.values())}",
                            hint="pass a base model of one of those families (config.json's model_type: "
                                 f"{', '.join(FAMILIES)})")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rope_type = (rope.get("rope_type") or rope.get("type") or "default") if isinstance(rope, dict) else "default"
    if rope_type not in ROPE_TYPES:
        raise RegistryError(f"{where}: rope scaling {rope_type!r} ({FAMILIES[model_type]}) depends on the sequence "
                            "length or is not one the export is tested on; it handles "
                            f"{', '.join(ROPE_TYPES)}", hint="pass a base model without that rope scaling")


@dataclass(frozen=True)
class CacheShape:
    """What a KV cache looks like for a model: the contract's past/present tensors."""

    layers: int
    kv_heads: int
    head_dim: int

    @classmethod
    def of(cls, config: Any) -> CacheShape:
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        kv_heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        return cls(int(config.num_hidden_layers), int(kv_heads), int(head_dim))

    def input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "position_ids", *self.past_names()]

    def past_names(self) -> list[str]:
        return [f"past_key_values.{i}.{kind}" for i in range(self.layers) for kind in ("key", "value")]

    def output_names(self) -> list[str]:
        return ["logits", *(f"present.{i}.{kind}" for i in range(self.layers) for kind in ("key", "value"))]


def cache_wrapper(model: Any) -> Any:
    """A module whose forward takes flat tensors (the contract's inputs) and returns (logits, *present)."""
    import torch
    from transformers import DynamicCache

    shape = CacheShape.of(model.config)

    class WithCache(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, position_ids: Any, *past: Any) -> tuple[Any, ...]:
            pairs = [(past[2 * i], past[2 * i + 1]) for i in range(shape.layers)]
            # No config: every layer keeps its whole past. With one, a sliding-window layer (Mistral, Qwen2's
            # windowed layers) would drop all but its last window - 1 keys while the contract's attention_mask
            # still spans the whole past; the window is the attention mask's business (the traced mask applies it).
            cache = DynamicCache(ddp_cache_data=pairs)
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=cache, use_cache=True)
            present: list[Any] = []
            for layer in out.past_key_values.layers:
                present += [layer.keys, layer.values]
            return (out.logits, *present)

    return WithCache().eval()


GROUPED = "taxreg_grouped"  # the attention implementation the graph is traced with


def grouped_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float,
                      dropout: float = 0.0, **kwargs: Any) -> tuple[Any, None]:
    """Eager attention with the query heads grouped per KV head instead of `repeat_kv` copies of the cache.

    Traced, `repeat_kv` is an Expand + Reshape that copies the whole past twice per layer and decode step, and
    the sdpa decomposition adds NaN guards; this is the same arithmetic as transformers' eager attention (an
    additive mask of finfo.min, so a fully masked left-pad row stays finite) on [batch, kv, groups * seq, dim].
    """
    import torch

    if kwargs.get("softcap") is not None or kwargs.get("s_aux") is not None:  # not plain attention: leave it be
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    batch, heads, seq, dim = query.shape
    kv = key.shape[1]
    groups = heads // kv
    scores = torch.matmul(query.reshape(batch, kv, groups * seq, dim), key.transpose(2, 3)) * scaling
    if attention_mask is not None:  # [batch, 1, seq, total] broadcast over the kv heads and their groups
        scores = (scores.reshape(batch, kv, groups, seq, -1) + attention_mask[:, :, None]).reshape(
            batch, kv, groups * seq, -1)
    probs = torch.nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    out = torch.matmul(probs, value).reshape(batch, heads, seq, dim)
    return out.transpose(1, 2).contiguous(), None


def causal_padding_mask(batch_size: int, q_length: int, kv_length: int, q_offset: Any = 0, kv_offset: Any = 0,
                        mask_function: Any = None, attention_mask: Any = None, dtype: Any = None, **kwargs: Any
                        ) -> Any:
    """transformers' eager mask for plain causal attention with padding, as a handful of traced nodes.

    Its generic builder indexes the padding mask per (batch, key) pair (GatherND, Expand...): some 35 nodes run
    on every decode step, a tenth of the demo model's step. Anything but the plain causal mask (sliding windows,
    chunks, packed sequences) goes to transformers' own builder.
    """
    import torch
    from transformers.masking_utils import causal_mask_function, eager_mask

    dtype = dtype or torch.float32
    if mask_function is not causal_mask_function or attention_mask is None or attention_mask.ndim != 2:
        return eager_mask(batch_size=batch_size, q_length=q_length, kv_length=kv_length, q_offset=q_offset,
                          kv_offset=kv_offset, mask_function=mask_function or causal_mask_function,
                          attention_mask=attention_mask, dtype=dtype, **kwargs)
    queries = torch.arange(q_length, device=attention_mask.device) + q_offset
    keys = torch.arange(kv_length, device=attention_mask.device) + kv_offset
    padding = attention_mask[:, kv_offset:kv_offset + kv_length].bool()  # a Slice, where indexing is a GatherND
    allowed = (keys[None, :] <= queries[:, None])[None, None] & padding[:, None, None, :]
    return torch.where(allowed, torch.tensor(0.0, dtype=dtype), torch.tensor(torch.finfo(dtype).min, dtype=dtype))


@contextmanager
def traced_with_grouped_attention(model: Any) -> Iterator[None]:
    """The model runs `grouped_attention` (with an eager-style additive mask) while traced, its own one after."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(GROUPED, grouped_attention)
    AttentionMaskInterface.register(GROUPED, causal_padding_mask)
    previous = model.config._attn_implementation
    model.set_attn_implementation(GROUPED)
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


def fuse_norms(graph: Any) -> int:
    """RMSNorm (and residual Add + RMSNorm) patterns -> onnxruntime's (Skip)SimplifiedLayerNormalization.

    Seven elementwise nodes per norm become one; at 190M parameters that is ~170 fewer kernel launches per
    decode step. Attention is left as traced: the fused GroupQueryAttention assumes right padding.
    """
    from onnxscript.rewriter.ort_fusions.rms_normalization import fuse_rms_normalization
    from onnxscript.rewriter.ort_fusions.skip_normalization import fuse_skip_rms_normalization

    return int(fuse_rms_normalization(graph)) + int(fuse_skip_rms_normalization(graph))


class _Producers:
    """Who writes each value of a graph, and its small constant initializers: enough to match a traced pattern."""

    def __init__(self, graph: Any) -> None:
        from onnx import numpy_helper

        self.by_output = {out: node for node in graph.node for out in node.output}
        self.consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer
                       if len(init.dims) <= 1 and not _external(init)}

    def made(self, name: str, op: str) -> Any:
        node = self.by_output.get(name)
        return node if node is not None and node.op_type == op else None

    def ints(self, name: str) -> list[int] | None:
        value = self.consts.get(name)
        return None if value is None else [int(v) for v in value.reshape(-1)]

    @staticmethod
    def attr(node: Any, name: str) -> Any:
        from onnx import helper

        return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), None)

    def table(self, name: str, op: str) -> Any:
        """The Cos or Sin node behind `Unsqueeze(op(...), axes=[1])`."""
        node = self.made(name, "Unsqueeze")
        return self.made(node.input[0], op) if node is not None and self.ints(node.input[1]) == [1] else None

    def inv_freq(self, cos: Any, sin: Any) -> Any:
        """inv_freq when cos and sin read `Concat(f, f)`, `f = Cast(Unsqueeze(position_ids)) * inv_freq`."""
        cat = self.made(cos.input[0], "Concat")
        if cat is None or cos.input[0] != sin.input[0] or len(cat.input) != 2 or len(set(cat.input)) != 1 \
                or self.attr(cat, "axis") not in (-1, 2):
            return None
        mul = self.made(cat.input[0], "Mul")
        cast = self.made(mul.input[0], "Cast") if mul is not None else None
        unsq = self.made(cast.input[0], "Unsqueeze") if cast is not None else None
        if unsq is None or mul.input[1] not in self.consts or unsq.input[0] != "position_ids" \
                or self.ints(unsq.input[1]) not in ([-1], [2]) or self.attr(cast, "to") != 1:  # float32 [b, s, 1]
            return None
        return self.consts[mul.input[1]].reshape(-1)

    def rotary(self, add: Any) -> tuple[str, Any] | None:
        """(x, inv_freq) when `add` is `x * cos + Concat(-x[..., half:], x[..., :half]) * sin`."""
        muls = [self.made(name, "Mul") for name in add.input]
        if None in muls:
            return None
        for straight, rotated in (muls, muls[::-1]):
            x = straight.input[0]
            cat, cos = self.made(rotated.input[0], "Concat"), self.table(straight.input[1], "Cos")
            sin = self.table(rotated.input[1], "Sin")
            if cat is None or cos is None or sin is None or len(cat.input) != 2 \
                    or self.attr(cat, "axis") not in (-1, 3):
                continue
            neg, low = self.made(cat.input[0], "Neg"), self.made(cat.input[1], "Slice")
            high = self.made(neg.input[0], "Slice") if neg is not None else None
            inv_freq = self.inv_freq(cos, sin)
            if high is None or low is None or inv_freq is None or high.input[0] != x or low.input[0] != x:
                continue
            half, last = len(inv_freq), ([3], [-1])
            if self.ints(low.input[1]) == [0] and self.ints(low.input[2]) == [half] \
                    and self.ints(high.input[1]) == [half] and self.ints(low.input[3]) in last \
                    and self.ints(high.input[3]) in last \
                    and all(len(n.input) < 5 or self.ints(n.input[4]) == [1] for n in (low, high)):
                return x, inv_freq
        return None


def fuse_rotary(model: Any, max_positions: int) -> int:
    """`x * cos + rotate_half(x) * sin` on [batch, heads, seq, head_dim] -> onnxruntime's RotaryEmbedding.

    Only where cos/sin are `Cos|Sin(Concat(f, f))` with `f = Cast(Unsqueeze(position_ids)) * inv_freq` (plain
    RoPE, as traced from transformers): their table over 0..max_positions-1 becomes two constant caches, computed
    with the same float32 product the graph does. Seven nodes per query and key become one. Returns how many.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    producers = _Producers(graph)
    caches: dict[bytes, tuple[str, str]] = {}
    fused = 0
    for add in [n for n in graph.node if n.op_type == "Add"]:
        match = producers.rotary(add)
        if match is None:
            continue
        x, inv_freq = match[0], match[1].astype(np.float32)
        key = inv_freq.tobytes()
        if key not in caches:
            theta = np.arange(max_positions, dtype=np.float32)[:, None] * inv_freq[None, :]
            names = (f"rotary.cos_cache.{len(caches)}", f"rotary.sin_cache.{len(caches)}")
            graph.initializer.extend([numpy_helper.from_array(np.cos(theta), names[0]),
                                      numpy_helper.from_array(np.sin(theta), names[1])])
            caches[key] = names
        node = helper.make_node("RotaryEmbedding", [x, "position_ids", *caches[key]], list(add.output),
                                name=f"{add.name}.rotary", domain="com.microsoft", interleaved=0)
        graph.node.insert(list(graph.node).index(add), node)
        graph.node.remove(add)
        fused += 1
    if fused:
        if not any(o.domain == "com.microsoft" for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
        drop_dead_nodes(model)
    return fused


def drop_dead_nodes(model: Any) -> None:
    """Nodes whose outputs nothing reads, and initializers no node reads, after a rewrite."""
    graph = model.graph
    live = {out.name for out in graph.output}
    for node in reversed(list(graph.node)):
        if any(out in live for out in node.output):
            live.update(node.input)
        else:
            graph.node.remove(node)
    for init in [i for i in graph.initializer if i.name not in live]:
        graph.initializer.remove(init)


def export_fp32(model: Any, out_dir: Path, external_above: int = EXTERNAL_DATA_ABOVE) -> Path:
    """torch.onnx.export(dynamo=True) of the cache wrapper, traced with grouped attention, with RMSNorm and RoPE
    fused into onnxruntime's kernels; returns the written model.onnx."""
    import torch
    from torch.export import Dim

    shape = CacheShape.of(model.config)
    # Lengths >= 2 so the exporter does not specialize a dimension to 1; the mask has its own length dim
    # (a derived `past + seq` dim raises NotImplementedError).
    batch, seq, past_len = 2, 3, 2
    vocab = int(model.config.vocab_size)
    generator = torch.Generator().manual_seed(0)
    past = tuple(torch.zeros(batch, shape.kv_heads, past_len, shape.head_dim) for _ in range(2 * shape.layers))
    args = (torch.randint(0, vocab, (batch, seq), generator=generator),
            torch.ones(batch, past_len + seq, dtype=torch.long),
            torch.arange(past_len, past_len + seq).expand(batch, seq).contiguous(), *past)
    b, s, total, p = Dim("batch"), Dim("seq"), Dim("total"), Dim("past")
    dynamic = {"input_ids": {0: b, 1: s}, "attention_mask": {0: b, 1: total}, "position_ids": {0: b, 1: s},
               "past": tuple({0: b, 2: p} for _ in range(2 * shape.layers))}  # *past is one pytree
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILE
    with torch.no_grad(), traced_with_grouped_attention(model):
        program = torch.onnx.export(cache_wrapper(model), args, dynamic_shapes=dynamic, dynamo=True,
                                    input_names=shape.input_names(), output_names=shape.output_names(),
                                    verbose=False)
    if program is None:  # only the legacy exporter returns None
        raise RuntimeError("torch.onnx.export returned no program")
    import onnx
    import onnx_ir

    fuse_norms(program.model)
    # Tensor by tensor from the PyTorch weights into model.onnx.data: never a whole-model proto, or its serialized
    # bytes, beside the model. Small tensors (RoPE's inv_freq, shapes, axes) stay inline for the rewrites below.
    onnx_ir.save(program.model, path, external_data=DATA_FILE, size_threshold_bytes=INLINE_UP_TO)
    del program
    graph = onnx.load(str(path), load_external_data=False)
    fuse_rotary(graph, int(model.config.max_position_embeddings))
    _finish(graph, path, external_above)
    return path


def _finish(graph: Any, path: Path, external_above: int) -> None:
    """Write `graph`, whose weights are in model.onnx.data beside `path`: as one file when the whole is at most
    `external_above` bytes (small models: loading it back costs little), else the graph alone beside the data."""
    import onnx

    data = path.with_name(DATA_FILE)
    if graph.ByteSize() + data.stat().st_size <= external_above:
        onnx.load_external_data_for_model(graph, str(path.parent))
        onnx.save(graph, str(path))
        data.unlink()
    else:
        onnx.save(graph, str(path))


def rewrite_weights(source: Path, target: Path, replace: Callable[[str, Any], Any],
                    external_above: int = EXTERNAL_DATA_ABOVE) -> None:
    """The graph at `source` written to `target` (a model.onnx path) with each initializer's value replaced by what
    `replace(name, value)` returns (None: kept). Read and written one tensor at a time, so no step holds the graph's
    weights twice; laid out as `export_fp32` lays out its graphs (one file up to `external_above` bytes)."""
    import onnx
    from onnx import numpy_helper
    from onnx.external_data_helper import set_external_data

    graph = onnx.load(str(source), load_external_data=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.with_name(DATA_FILE).open("wb") as data:
        for init in graph.graph.initializer:
            value = numpy_helper.to_array(init, str(source.parent))
            new = replace(init.name, value)
            if new is None and not _external(init):
                continue
            tensor = numpy_helper.from_array(value if new is None else new, init.name)
            if len(tensor.raw_data) > INLINE_UP_TO:
                set_external_data(tensor, DATA_FILE, data.tell(), len(tensor.raw_data))
                data.write(tensor.raw_data)
                tensor.ClearField("raw_data")
            init.CopyFrom(tensor)
    _finish(graph, target, external_above)


def untie_transposed_weights(model: Any, base_dir: Path | None = None) -> int:
    """Store `W` of `MatMul(x, Transpose(W))` (W a 2-D initializer) transposed as its own initializer.

    Tied embeddings leave the LM head reading the embedding matrix through a Transpose (the exporter will not
    duplicate a shared weight). In fp32 that is free: onnxruntime folds the constant Transpose when the session
    loads. After int8 quantization it becomes DequantizeLinear -> Transpose of the whole matrix, which is never
    folded: 65 ms per decode step at 190M parameters against 17 ms once the head has its own (quantized) copy.
    `base_dir`: where a weight held in external data is read from. Returns how many were rewritten.
    """
    from onnx import numpy_helper

    graph = model.graph
    weights = {init.name: init for init in graph.initializer if len(init.dims) == 2}
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    rewritten = 0
    for node in list(graph.node):
        perm = [list(a.ints) for a in node.attribute if a.name == "perm"]
        if node.op_type != "Transpose" or node.input[0] not in weights or perm not in ([], [[1, 0]]):
            continue
        consumers = users.get(node.output[0], [])
        if not consumers or any(c.op_type != "MatMul" or list(c.input).index(node.output[0]) != 1 for c in consumers):
            continue
        source = node.input[0]
        flipped = numpy_helper.from_array(numpy_helper.to_array(weights[source], str(base_dir or "")).T.copy(),
                                         f"{source}.transposed")
        graph.initializer.append(flipped)
        for consumer in consumers:
            consumer.input[1] = flipped.name
        graph.node.remove(node)
        rewritten += 1
    return rewritten


def untied(fp32: Path) -> Any:
    """The fp32 graph as int8 quantization reads it: the LM head with its own weight (see above). Weights in
    external data stay there (the proto refers to them); only the transposed copy is read."""
    import onnx

    graph = onnx.load(str(fp32), load_external_data=False)
    untie_transposed_weights(graph, fp32.parent)
    return graph


def quantize_int8(fp32: Path, out_dir: Path, work: Path, keep_fp32: tuple[str, ...] = (),
                  external_above: int = EXTERNAL_DATA_ABOVE) -> Path:
    """Dynamic int8 quantization of the weights (activations quantized at run time), onnxruntime's own tool.

    `keep_fp32` names MatMul nodes left as they are (builder/model/mixed_int8.py chooses them)."""
    from google.protobuf.message import DecodeError
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = untied(fp32)
    external = any(_external(init) for init in graph.graph.initializer)
    big = external or _too_big(graph, external_above)
    shutil.rmtree(out_dir, ignore_errors=True)  # onnx appends external data to an existing .data file
    # A graph in external data is untied beside its model.onnx.data (onnx refuses a link to it), so the copy refers
    # to fp32's weights instead of holding a second copy of them; the files it adds go when the quantizer is done.
    where = fp32.parent if external else work
    where.mkdir(parents=True, exist_ok=True)
    source = where / "untied.onnx"
    save(graph, source, external_above, external=big)
    del graph
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILE
    try:
        quantize_dynamic(source, path, weight_type=QuantType.QInt8, use_external_data_format=big,
                         nodes_to_exclude=list(keep_fp32))
    except DecodeError:  # onnx's shape inference writes its copy unchecked: on a full disk it reads back cut short
        disks.require_space(where, source.stat().st_size, where)
        raise
    finally:
        for added in (source, source.with_name(f"{source.name}.data")):
            added.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    return path


def io_names(path: Path) -> tuple[list[str], list[str]]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [i.name for i in graph.input], [o.name for o in graph.output]


def _too_big(model: Any, limit: int) -> bool:
    return bool(model.ByteSize() > limit)


def _external(tensor: Any) -> bool:
    from onnx import TensorProto

    return bool(tensor.data_location == TensorProto.EXTERNAL)


def save(model: Any, path: Path, external_above: int = EXTERNAL_DATA_ABOVE, external: bool | None = None) -> None:
    """One file, or past `external_above` bytes (or when `external`) the graph with its weights in
    `<name>.data` beside it. Weights already in external data stay where they are."""
    import onnx

    if external or (external is None and _too_big(model, external_above)):
        onnx.save(model, str(path), save_as_external_data=True, location=f"{path.name}.data")
    else:
        onnx.save(model, str(path))


def genai_available() -> bool:
    return importlib.util.find_spec("onnxruntime_genai") is not None


def build_int4(merged_dir: Path, out_dir: Path, work_dir: Path) -> Path:
    """onnxruntime-genai's model builder, int4 on CPU, from a merged Hugging Face directory."""
    if not genai_available():
        raise EnvironmentProblem("--int4 needs onnxruntime-genai, which is not installed",
                                 hint="pip install onnxruntime-genai (CPU environment) and run the export again, "
                                      "or leave out --int4")
    cache = work_dir / "genai-cache"
    command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(merged_dir), "-o", str(out_dir),
               "-p", "int4", "-e", "cpu", "-c", str(cache)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError("onnxruntime-genai's builder failed: " + " / ".join(tail))
    return out_dir / MODEL_FILE
