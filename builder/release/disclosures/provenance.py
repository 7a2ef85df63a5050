"""provenance.intoto.jsonl: SLSA v1 build provenance of a release, as an in-toto Statement v1 built with
`in-toto-attestation`, and with `--sign` a DSSE envelope signed with the release key by `securesystemslib`.

Subjects are every file the manifest lists (but this one); `resolvedDependencies` are the taxonomy commit, every
document (repo@commit#path with its sha256), the base model's weights, the teacher and judge models, and the
builder with the digests of its installed distributions. The signature uses RFC 6979 nonces, so the same key and
inputs give the same bytes: a signed release reproduces like an unsigned one.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from securesystemslib.dsse import Envelope
from securesystemslib.signer import Signature, Signer, SSlibKey

from builder.release.disclosures.facts import ReleaseFacts
from builder.source_version import source_digest
from registry.release.canonical import canonical_bytes, canonical_sha256
from registry.release.manifest import Manifest
from registry.release.provenance import PAYLOAD_TYPE, PREDICATE_TYPE, Provenance
from registry.release.sums import file_sha256

BUILD_TYPE = "https://example.invalid/taxonomy-registry/release-cut/v1"
DISTRIBUTION = "taxonomy-registry"


def builder_id(version: str) -> str:
    return f"pkg:pypi/{DISTRIBUTION}@{version}"


def stamp(draft: Manifest, command: list[str]) -> Manifest:
    """The draft manifest with what the provenance's runDetails repeat: the builder id and an invocation id (a digest
    of the command and inputs, so that equal cuts share it)."""
    from dataclasses import replace

    invocation = canonical_sha256({"command": command, "inputs": draft.inputs, "version": draft.version})
    return replace(draft, inputs={**draft.inputs, "provenance": {
        "builder_id": builder_id(draft.builder_version), "invocation_id": invocation, "command": command}})


def write(path: Path, staging: Path, files: list[str], facts: ReleaseFacts, sign_key: Path | None) -> None:
    statement = canonical_bytes(_statement(staging, files, facts))
    line = statement if sign_key is None else canonical_bytes(_envelope(statement, sign_key))
    path.write_bytes(line + b"\n")


def verify_envelope(provenance: Provenance, public_key: Path) -> str | None:
    """None when the envelope's signature holds for `public_key`; else what is wrong."""
    if provenance.envelope is None:
        return "the release is signed but its provenance is a bare statement (the envelope was stripped)"
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = SSlibKey.from_crypto(load_pem_public_key(public_key.read_bytes()))
        Envelope.from_dict(dict(provenance.envelope)).verify([key], 1)
    except Exception as exc:  # the library raises VerificationError, FormatError, KeyError and ValueError alike
        return f"the provenance envelope does not verify with {public_key}: {str(exc)[:200]}"
    return None


def _statement(staging: Path, files: list[str], facts: ReleaseFacts) -> dict[str, Any]:
    from google.protobuf import json_format
    from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
    from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
    from in_toto_attestation.v1.statement import Statement

    subjects = [ResourceDescriptor(name=name, digest={"sha256": file_sha256(staging / name)}).pb for name in files]
    predicate = json_format.ParseDict(_predicate(facts), provenance_pb2.Provenance())  # refuses what SLSA does not have
    statement = Statement(subjects, PREDICATE_TYPE, json_format.MessageToDict(predicate))
    statement.validate()
    result: dict[str, Any] = json_format.MessageToDict(statement.pb)
    return result


def _predicate(facts: ReleaseFacts) -> dict[str, Any]:
    m = facts.manifest
    stamped = m.inputs["provenance"]
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {"taxonomy_commit": m.inputs.get("taxonomy_commit"), "config": m.inputs["config"],
                                   "config_sha256": m.inputs["config_sha256"], "command": stamped["command"],
                                   "version": m.version},
            "internalParameters": {"seeds": m.inputs["seeds"], "source_date_epoch": m.determinism.get(
                "source_date_epoch"), "released_at": m.released_at},
            "resolvedDependencies": _dependencies(facts)},
        "runDetails": {
            "builder": {"id": stamped["builder_id"], "version": {DISTRIBUTION: m.builder_version}},
            "metadata": {"invocationId": stamped["invocation_id"], "startedOn": m.released_at,
                         "finishedOn": m.released_at}},
    }


def _dependencies(facts: ReleaseFacts) -> list[dict[str, Any]]:
    m = facts.manifest
    found: list[dict[str, Any]] = []
    if m.inputs.get("taxonomy_commit"):
        found.append({"name": "taxonomy", "digest": {"gitCommit": m.inputs["taxonomy_commit"]},
                      "annotations": {"role": "taxonomy"}})
    found += [{"uri": f"{d.repo_url}@{d.repo_commit}#{d.path}", "digest": {"sha256": d.doc_sha256},
               "annotations": {"role": "document", "license": d.license_spdx or "UNKNOWN"}} for d in facts.documents]
    base = m.inputs.get("base_model")
    if base:
        found.append({"name": base["model_ref"], **({"digest": {"sha256": base["weights_sha256"]}}
                                                    if base.get("weights_sha256") else {}),
                      "annotations": {"role": "base_model", "revision": base.get("revision") or "",
                                      "demo": bool(base.get("demo"))}})
    found += [{"name": t.teacher, "annotations": {"role": "teacher", "revision": t.revision or "",
                                                  "output_terms": t.output_terms or ""}} for t in facts.teachers]
    found += [{"name": judge, "annotations": {"role": "judge"}} for judge in facts.judges]
    found += [{"uri": f"pkg:pypi/{name}@{version}", "digest": {"sha256": digest},
               "annotations": {"role": "builder" if name == DISTRIBUTION else "builder_dependency"}}
              for name, version, digest in installed()]
    return found


@cache
def installed() -> tuple[tuple[str, str, str], ...]:
    """The builder's distribution and every distribution it requires (transitively), with the sha256 of the files
    that ran: for taxonomy-registry its package sources, for the others their RECORD (which lists each installed
    file's hash)."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: dict[str, metadata.Distribution] = {}
    todo = [DISTRIBUTION]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        try:
            seen[name] = dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency not installed here
        for spec in dist.requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return tuple(sorted((name, d.version, _digest(name, d)) for name, d in seen.items()))


def _digest(name: str, dist: Any) -> str:
    if name == DISTRIBUTION:
        return source_digest()
    record = dist.read_text("RECORD") or ""
    return hashlib.sha256(record.encode()).hexdigest()


def _envelope(statement: bytes, sign_key: Path) -> dict[str, Any]:
    envelope = Envelope(statement, PAYLOAD_TYPE, {})
    envelope.sign(_DeterministicSigner.load(sign_key))
    signed: dict[str, Any] = envelope.to_dict()
    assert base64.b64decode(signed["payload"]) == statement
    return signed


class _DeterministicSigner(Signer):
    """ECDSA with RFC 6979 nonces (securesystemslib's CryptoSigner draws random ones, so two signed cuts would
    differ). The signature verifies as any ECDSA signature: `SSlibKey.verify_signature` checks it."""

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        self._public = SSlibKey.from_crypto(private_key.public_key())

    @classmethod
    def load(cls, path: Path) -> _DeterministicSigner:
        from builder.release.signing import load_private_key

        return cls(load_private_key(path))

    @classmethod
    def from_priv_key_uri(cls, priv_key_uri: str, public_key: Any, secrets_handler: Any = None) -> Any:
        raise NotImplementedError("load a release key with _DeterministicSigner.load")

    @property
    def public_key(self) -> SSlibKey:
        return self._public

    def sign(self, payload: bytes) -> Signature:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        algorithm = {256: hashes.SHA256(), 384: hashes.SHA384(), 521: hashes.SHA512()}[self._key.curve.key_size]
        signature = self._key.sign(payload, ec.ECDSA(algorithm, deterministic_signing=True))
        return Signature(self._public.keyid, signature.hex())
