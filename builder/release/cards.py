"""model/README.md: a Hugging Face model card (YAML front matter + text) written from the release manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.release.manifest import Manifest

PARITY_METRICS = ("max_abs_diff", "top1_agreement", "greedy_identical_prompts")
VARIANT_NAMES = {"onnx": "fp32", "onnx_int8": "int8", "onnx_int4": "int4"}


def write_model_card(path: Path, manifest: Manifest) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_card(manifest), encoding="utf-8")


def model_card(manifest: Manifest) -> str:
    import yaml

    model = manifest.model or {}
    adapter = any(a["kind"] == "adapter" for a in model.get("artifacts", []))
    single = " AND " not in manifest.license and " OR " not in manifest.license
    header: dict[str, Any] = {
        "license": manifest.license.lower() if single else "other",
        **({} if single else {"license_name": "mixed", "license_details": manifest.license}),
        "base_model": model.get("base_model"),
        "base_model_relation": model.get("base_model_relation", "finetune"),
        "datasets": [f"taxonomy-registry-{d}" for d in sorted({d["name"] for d in manifest.inputs["datasets"]})],
        "language": ["en"],
        "library_name": "onnx",
        "pipeline_tag": "text-generation",
        "tags": ["taxonomy-registry", *(["lora", "peft"] if adapter else []), "onnx",
                 *(["demo"] if "demo" in str(model.get("base_model")) else [])],  # the demo base says so in its name
    }
    metrics = _metrics(manifest.metrics.get("parity") or {})
    if metrics:
        header["model-index"] = [{"name": f"taxonomy-registry-{manifest.version}", "results": [{
            "task": {"type": "text-generation"},
            "dataset": {"name": "ONNX export parity (each variant vs PyTorch)", "type": "parity"},
            "metrics": metrics}]}]
    artifacts = model.get("artifacts", [])
    kinds = {a["kind"] for a in artifacts}
    variants = ", ".join(name for kind, name in VARIANT_NAMES.items() if kind in kinds)
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True, width=1000).rstrip(), "---", "",
        f"# Taxonomy Registry model {manifest.version}", "",
        (f"A LoRA fine-tune of `{model.get('base_model')}` on the community taxonomy's training data, exported "
         f"to ONNX ({variants})." if adapter else f"`{model.get('base_model')}` exported to ONNX ({variants}), "
         "without fine-tuning.") + " When the base is the embedded demo model this is a **demo model**: tiny, "
        "trained for minutes on a CPU, useful to show the pipeline, not to answer questions well.", "",
        *base_model_section(manifest.inputs.get("base_model") or {}),
        "| folder | what | artifact |", "|---|---|---|",
        *(f"| `{a['path']}` | {a['kind']} ({a['format']}) | `{a['artifact_id'][:16]}` |" for a in artifacts), "",
        *mixed_int8_note(manifest.metrics.get("parity") or {}),
        "## Training data", "",
        f"- {manifest.samples.get('total', 0)} samples from {len(manifest.contributions)} contributions "
        f"(`data/`, with its own card and `croissant.json`)",
        f"- Licenses of the sources: {manifest.license}",
        f"- Teacher models: {', '.join(t['model_ref'] for t in manifest.inputs['teacher_models']) or 'none'}",
        f"- Seeds: generation {[s['random_seed'] for s in manifest.inputs['seeds']['generation']]}, "
        f"training {manifest.inputs['seeds']['training']}", "",
        "## Provenance", "",
        "Every file of this release is listed with its sha256 in `SHA256SUMS` and `manifest.json`; check them with "
        "`taxreg release verify`. The audit database in `audit/` traces every training sample to its seed, "
        "document, contribution, contributor and license.", "",
    ]
    return "\n".join(lines)


def base_model_section(base: dict[str, Any]) -> list[str]:
    """The model fine-tuned: its name, the digest of its folder's files, its weights' sha256 and its license."""
    if not base:
        return []
    rows = [("name", f"`{base.get('model_ref')}`"),
            ("revision", f"`{base['revision']}` (artifact id: sha256 over the folder's files)"
             if base.get("revision") else "unknown"),
            ("weights sha256", f"`{base['weights_sha256']}`" if base.get("weights_sha256") else "unknown"),
            ("license", base.get("license") or "unknown (the base model's folder names none: check it before use)")]
    return ["## Base model", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]


def _metrics(parity: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for variant in ("fp32", "int8", "int4"):
        section = parity.get("variants", {}).get(variant)
        if not isinstance(section, dict):
            continue
        for name in PARITY_METRICS:
            value = section.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                found.append({"type": f"{variant}_{name}", "value": value, "name": f"{variant} ONNX vs PyTorch: "
                              f"{name.replace('_', ' ')}"})
    return found



def mixed_int8_note(parity: dict[str, Any]) -> list[str]:
    """A paragraph when the int8 graph keeps matmuls in fp32 (builder/model/mixed_int8.py), from parity.json."""
    int8 = (parity.get("variants") or {}).get("int8") or {}
    kept = int8.get("fp32_matmuls") or []
    if not kept:
        return []
    names = ", ".join(f"`{name}`" for name in kept)
    target = (int8.get("thresholds") or {}).get("top1_agreement", 0.95)
    return [f"The int8 graph keeps {len(kept)} matmul(s) in fp32 ({names}; "
            f"{int8.get('fp32_weight_share', 0):.1%} of the matmul weights): all-int8 top-1 agreement was "
            f"{int8.get('all_int8_top1_agreement', 0):.1%}, under the {target:.0%} target, and is "
            f"{int8.get('top1_agreement', 0):.1%} with them (`parity.json`).", ""]
