"""Signing a release folder with a local key, offline: OpenSSF `model-signing` (an in-toto statement listing
every file's sha256, in a DSSE envelope, written as a Sigstore bundle) with an ECDSA key in PEM.

Make a key with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out release-key.pem (PKCS8;
OpenSSL's `EC PRIVATE KEY` from `openssl ecparam -genkey` works too).
The public key ships in the release (release.pub.pem); `release verify --key PUB` pins the signer.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from registry.errors import RegistryError
from registry.release.manifest import PUBLIC_KEY, SIGNATURE

KEYGEN = "make one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem"
METHOD = "model-signing 1.x, ECDSA key (in-toto statement, DSSE envelope, Sigstore bundle)"


def public_key_pem(private_key: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return bytes(load_private_key(private_key).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def public_key_sha256(private_key: Path) -> str:
    return hashlib.sha256(public_key_pem(private_key)).hexdigest()


def sign(folder: Path, private_key: Path) -> None:
    from model_signing import hashing, signing

    load_private_key(private_key)  # a clear error before the library's own
    folder = folder.resolve()  # the library compares ignored paths with resolved ones: a relative one is not ignored
    config = hashing.Config().set_ignored_paths(paths=[folder / SIGNATURE])  # type: ignore[no-untyped-call]
    signer = signing.Config().use_elliptic_key_signer(private_key=private_key)  # type: ignore[no-untyped-call]
    signer.set_hashing_config(config).sign(folder, folder / SIGNATURE)


def verify(folder: Path, public_key: Path | None) -> str | None:
    """None when the signature holds for every file; else what is wrong, in one line, with what to do."""
    from cryptography.exceptions import InvalidSignature
    from model_signing import hashing, verifying

    folder = folder.resolve()  # as in sign(): `release verify build/releases/X` must ignore the signature file
    key = public_key or folder / PUBLIC_KEY
    if not key.is_file():
        return f"no public key at {key}"
    config = hashing.Config().set_ignored_paths(paths=[folder / SIGNATURE])  # type: ignore[no-untyped-call]
    verifier = verifying.Config().use_elliptic_key_verifier(public_key=key)  # type: ignore[no-untyped-call]
    try:
        verifier.set_hashing_config(config).verify(folder, folder / SIGNATURE)
    except InvalidSignature:
        return (f"does not verify with {key} ({SIGNATURE} was altered, or made with another key): get the release "
                "again from where it was published")
    except ValueError as exc:  # the library's words for a key or file mismatch; JSON errors are ValueErrors too
        return _mismatch(str(exc), key) or _unreadable(exc)
    except Exception as exc:  # a bundle of the wrong shape (TypeError, KeyError, protobuf errors)
        return _unreadable(exc)
    return None


def _mismatch(message: str, key: Path) -> str | None:
    if message.startswith("Key mismatch"):
        return f"made with another key than {key}: pass --key with the signer's public key"
    if message.startswith("Signature mismatch"):
        changed = re.findall(r"Hash mismatch for \\?'(.+?)\\?': Expected", message)  # the names in its list's repr
        what = ", ".join(changed) if changed else "files were added or removed"
        return f"valid, but these files changed since signing: {what}"
    return None


def _unreadable(exc: Exception) -> str:
    return (f"{SIGNATURE} is not a readable signature bundle ({type(exc).__name__}: {str(exc)[:100]}); get the "
            "release again from where it was published")


def load_private_key(path: Path) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise RegistryError(f"cannot read the signing key {path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise RegistryError(f"{path} is not an unencrypted PEM private key: {exc}",
                            hint=KEYGEN) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise RegistryError(f"{path} is not an elliptic-curve key (model-signing signs with ECDSA)",
                            hint=KEYGEN)
    return key
