"""model/README.md: a Hugging Face model card (YAML front matter + text) written from the release manifest."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from registry.release.manifest import Manifest

PARITY_METRICS = ("max_abs_diff", "top1_agreement", "greedy_identical_prompts")
# evaluation metric -> (model-index metric type, what it is); nll is shown as perplexity, as the Hub knows it
INDEX_METRICS = {"mc_acc": ("accuracy", "multiple-choice accuracy"),
                 "mc_acc_norm": ("accuracy", "multiple-choice accuracy, per-byte log-likelihood"),
                 "nll": ("perplexity", "perplexity of the reference answers"),
                 "f1": ("f1", "token F1 of greedy answers"), "rouge_l": ("rouge", "ROUGE-L of greedy answers"),
                 "judge": ("judge", "LLM judge score (0-1)")}
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
    evaluation = manifest.metrics.get("evaluation") or {}
    results = ([{"task": {"type": "text-generation"},
                 "dataset": {"name": "ONNX export parity (each variant vs PyTorch)", "type": "parity"},
                 "metrics": metrics}] if metrics else []) + _evaluation_results(evaluation)
    if results:
        header["model-index"] = [{"name": f"taxonomy-registry-{manifest.version}", "results": results}]
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
        *evaluation_section(evaluation),
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



def _evaluation_results(evaluation: dict[str, Any]) -> list[dict[str, Any]]:
    """One model-index result per kind and domain, and one for the guard set: the fine-tuned model's values."""
    results = []
    for group in _groups(evaluation):
        kind, domain, rows = group
        name = "guard set (general ability, held out of all training)" if kind == "guard" else \
            f"{kind.replace('_', ' ')} / {domain}"
        metrics = [_index_metric(row) for row in rows if row["metric"] in INDEX_METRICS]
        if metrics:
            results.append({"task": {"type": "text-generation"},
                            "dataset": {"name": f"Taxonomy Registry evaluation: {name}",
                                        "type": "taxonomy-registry-evaluation",
                                        "config": "guard" if kind == "guard" else f"{kind}/{domain}", "split": "test"},
                            "metrics": metrics})
    return results


def _groups(evaluation: dict[str, Any]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    rows = [*evaluation.get("summary", []), *evaluation.get("guard", [])]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["kind"], row.get("domain") or ""), []).append(row)
    return [(kind, domain, found) for (kind, domain), found in groups.items()]


def _index_metric(row: dict[str, Any]) -> dict[str, Any]:
    kind, what = INDEX_METRICS[row["metric"]]
    value, base = (math.exp(row["tuned"]), math.exp(row["base"])) if row["metric"] == "nll" else \
        (row["tuned"], row["base"])
    chance = f", chance {row['chance']:.3g}" if row.get("chance") is not None else ""
    return {"type": kind, "value": round(value, 4),
            "name": f"{what} ({row['items']} items; base model {base:.4g}{chance})"}


def evaluation_section(evaluation: dict[str, Any]) -> list[str]:
    """## Evaluation: the fine-tuned model against its base, per kind and domain and on the guard set."""
    if not evaluation:
        return []
    lines = ["## Evaluation", "",
             f"The base model and this fine-tune, both as the ONNX graphs this release ships, on "
             f"{evaluation.get('items', 0)} questions held out of training (`evaluation.json`, sha256 "
             f"`{str(evaluation.get('results_sha256', ''))[:16]}`; per contribution with bootstrap intervals on the "
             "site and in the audit database, `v_contribution_impact`). Multiple choice is scored by "
             "log-likelihood, as lm-evaluation-harness does; chance is what guessing scores.", "",
             "| kind | domain | metric | items | base | fine-tuned | chance |", "|---|---|---|---|---|---|---|"]
    for kind, domain, rows in _groups(evaluation):
        for row in rows:
            label = (evaluation.get("metrics") or {}).get(row["metric"], {}).get("label", row["metric"])
            chance = f"{row['chance']:.3f}" if row.get("chance") is not None else ""
            lines.append(f"| {kind.replace('_', ' ')} | {domain or '(all)'} | {label} | {row['items']} | "
                         f"{row['base']:.4f} | {row['tuned']:.4f} | {chance} |")
    mc = [r for _, _, rows in _groups(evaluation) for r in rows if r["metric"] == "mc_acc" and r["kind"] == "knowledge"]
    if mc:
        items = sum(r["items"] for r in mc)
        tuned, base = (sum(r[k] * r["items"] for r in mc) / items for k in ("tuned", "base"))
        chance = sum(r["chance"] * r["items"] for r in mc) / items
        lines += ["", f"Multiple-choice accuracy on knowledge after fine-tuning: **{tuned:.1%}** on {items} questions, "
                      f"against **{chance:.1%}** by chance (the base model: {base:.1%})."]
    regressions = evaluation.get("regressions", 0)
    lines += ["", f"{regressions} contribution(s) or guard metric(s) got worse beyond their interval and threshold"
              + (" (see the release's eval.no_regression gate)." if regressions else "."), ""]
    return lines


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
