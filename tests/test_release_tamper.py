"""`release verify` against tampering a reviewer found passing, and version names a cut must refuse.

Real releases (a data-only cut of the example taxonomy), real keys, real files: each tampered copy must fail."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from builder.cli import app
from builder.release.verify import verify_folder
from registry.errors import RegistryError
from registry.release.canonical import canonical_bytes
from registry.release.sums import format_sums, parse_sums
from tests.releasing import build_data, cut, make_key, rows

runner = CliRunner()


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tamper")
    build = build_data(root / "build")
    keys = {name: make_key(root, name)[0] for name in ("first", "second")}
    return {"root": root, "build": build, "plain": cut(build, "1.0.0"),
            "signed": cut(build, "1.0.0-signed", sign_key=keys["first"]),
            "other": cut(build, "1.0.0-other", sign_key=keys["second"]),
            "first.pub": root / "first.pub", "second.pub": root / "second.pub"}


def problems(folder: Path, key: Path | None = None) -> list[tuple[str, str]]:
    return [(d.path, d.problem) for d in verify_folder(folder, key)[1]]


def copy(releases: dict[str, Path], name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(releases[name], tmp_path / name))


@pytest.mark.parametrize("edit", ["crlf", "upper", "binary-marker", "reversed"])
def test_an_edited_sha256sums_fails_even_when_every_hash_still_matches(releases: dict[str, Path], tmp_path: Path,
                                                                       edit: str) -> None:
    folder = copy(releases, "plain", tmp_path)
    sums = folder / "SHA256SUMS"
    lines = sums.read_text().splitlines(keepends=True)
    edited = {"crlf": "".join(line.replace("\n", "\r\n") for line in lines),
              "upper": "".join(line[:64].upper() + line[64:] for line in lines),
              "binary-marker": "".join(line[:65] + "*" + line[66:] for line in lines),
              "reversed": "".join(reversed(lines))}[edit]
    sums.write_text(edited, newline="")
    assert ("SHA256SUMS", "changed") in problems(folder)
    assert runner.invoke(app, ["release", "verify", str(folder)]).exit_code == 1


def test_pipes_and_empty_folders_in_a_release_are_extra(releases: dict[str, Path], tmp_path: Path) -> None:
    folder = copy(releases, "plain", tmp_path)
    (folder / "newdir").mkdir()
    os.mkfifo(folder / "data" / "pipe")
    assert problems(folder) == [("data/pipe", "extra"), ("newdir", "extra")]


def test_a_pinned_key_fails_a_release_whose_signature_was_stripped(releases: dict[str, Path],
                                                                   tmp_path: Path) -> None:
    folder = copy(releases, "signed", tmp_path)
    # strip it cleanly: signature, shipped key, the manifest's signature entry and the sums, all consistent
    (folder / "release.sig").unlink()
    (folder / "release.pub.pem").unlink()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["signature"] = None
    manifest["files"] = [f for f in manifest["files"] if f["path"] != "release.pub.pem"]
    (folder / "manifest.json").write_bytes(canonical_bytes(manifest))
    sums = parse_sums((folder / "SHA256SUMS").read_text())
    sums.pop("release.pub.pem")
    sums["manifest.json"] = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    (folder / "SHA256SUMS").write_text(format_sums(sums.items()))
    assert problems(folder) == []  # without a pinned key it is an unsigned release, and says so
    assert verify_folder(folder)[2] == "unsigned"
    assert problems(folder, releases["first.pub"]) == [("release.sig", "missing")]
    cli = runner.invoke(app, ["release", "verify", str(folder), "--key", str(releases["first.pub"])])
    assert cli.exit_code == 1 and "unsigned" in cli.output


def test_a_key_swapped_in_with_a_new_signature_is_caught(releases: dict[str, Path], tmp_path: Path) -> None:
    from builder.release import signing

    folder = copy(releases, "signed", tmp_path)
    # ship the second key and re-sign everything with it; the manifest still names the first key
    shutil.copyfile(releases["other"] / "release.pub.pem", folder / "release.pub.pem")
    manifest = json.loads((folder / "manifest.json").read_text())
    digest = hashlib.sha256((folder / "release.pub.pem").read_bytes()).hexdigest()
    for entry in manifest["files"]:
        if entry["path"] == "release.pub.pem":
            entry["sha256"] = digest
    (folder / "manifest.json").write_bytes(canonical_bytes(manifest))
    sums = parse_sums((folder / "SHA256SUMS").read_text())
    sums["release.pub.pem"] = digest
    sums["manifest.json"] = hashlib.sha256((folder / "manifest.json").read_bytes()).hexdigest()
    (folder / "SHA256SUMS").write_text(format_sums(sums.items()))
    (folder / "release.sig").unlink()
    signing.sign(folder, releases["root"] / "second.pem")
    assert problems(folder) == [("release.pub.pem", "signature")]


def test_versions_with_a_final_newline_or_a_case_twin_are_refused(releases: dict[str, Path]) -> None:
    with pytest.raises(RegistryError, match="release version"):
        cut(releases["build"], "0.3.0\n")
    with pytest.raises(RegistryError, match="only in case"):
        cut(releases["build"], "1.0.0-SIGNED")
    assert not (releases["build"] / "releases" / "1.0.0-SIGNED").exists()


def test_release_list_without_a_catalog_names_the_build_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["release", "list", "--build-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--build-dir" in result.output and "no releases" in result.output


def test_an_unwritable_releases_folder_is_refused_before_the_gates(tmp_path: Path) -> None:
    import subprocess

    build = build_data(tmp_path / "build")
    releases = build / "releases"
    releases.mkdir()
    if os.geteuid() == 0:  # root ignores permissions: a read-only tmpfs refuses even root
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(releases)], check=False,
                          capture_output=True).returncode:
            pytest.skip("cannot mount a read-only tmpfs here")
    else:
        releases.chmod(0o555)
    try:
        with pytest.raises(RegistryError, match=r"release folder .* cannot be written"):
            cut(build, "2.0.0")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(releases)], check=False)
        else:
            releases.chmod(0o755)
    assert rows(build, "SELECT count(*) FROM policy_check") == [(0,)]  # no gate recorded for a cut that never began


def sums_line(folder: Path, prefix: str) -> tuple[int, str, str]:
    """(line number, path, sha256) of the first SHA256SUMS line whose path starts with `prefix`."""
    for number, line in enumerate((folder / "SHA256SUMS").read_text().splitlines(), 1):
        digest, path = line.split("  ", 1)
        if path.startswith(prefix):
            return number, path, digest
    raise AssertionError(f"no {prefix} line")


def edit_line(folder: Path, number: int, text: str) -> None:
    lines = (folder / "SHA256SUMS").read_text().splitlines(keepends=True)
    lines[number - 1] = text
    (folder / "SHA256SUMS").write_text("".join(lines))


def test_an_edited_sums_line_is_named_not_the_file_it_lists(releases: dict[str, Path], tmp_path: Path) -> None:
    folder = copy(releases, "signed", tmp_path)
    number, path, digest = sums_line(folder, "data/")
    edit_line(folder, number, f"{'0' * 64}  {path}\n")  # still sorted, well formed: only the digest lies
    assert problems(folder) == [(f"SHA256SUMS:{number}", "changed"), ("release.sig", "signature")]
    result = runner.invoke(app, ["release", "verify", str(folder)])
    lines = result.stdout.splitlines()
    assert result.exit_code == 1 and len(lines) == 3, result.stdout
    assert lines[0] == (f"SHA256SUMS:{number}: changed: says sha256 {'0' * 64} for {path}, but the file and the "
                        f"manifest have {digest}: SHA256SUMS was edited after the cut")
    assert lines[1] == "release.sig: signature: valid, but these files changed since signing: SHA256SUMS"
    assert f"{path}: changed" not in result.stdout


def test_a_sums_line_for_a_file_that_is_nowhere_is_named_by_its_line(releases: dict[str, Path],
                                                                     tmp_path: Path) -> None:
    folder = copy(releases, "plain", tmp_path)
    number, path, _ = sums_line(folder, "data/")
    edit_line(folder, number, f"{'1' * 64}  {path}\n{'2' * 64}  {path}.ghost\n")
    assert ("SHA256SUMS:" + str(number + 1), "extra") in problems(folder)
    assert not any(p.endswith(".ghost") for p, _ in problems(folder))  # not a missing file, not a manifest row
    assert (f"SHA256SUMS:{number}", "changed") in problems(folder)


@pytest.mark.parametrize("damage", ["signature", "payload", "truncated"])
def test_a_damaged_signature_is_one_line_with_what_to_do(releases: dict[str, Path], tmp_path: Path,
                                                         damage: str) -> None:
    import base64

    folder = copy(releases, "signed", tmp_path)
    bundle = json.loads((folder / "release.sig").read_text())
    envelope = bundle["dsseEnvelope"]
    field = envelope["signatures"][0] if damage == "signature" else envelope
    key = "sig" if damage == "signature" else "payload"
    raw = bytearray(base64.b64decode(field[key]))
    raw[len(raw) // 2] ^= 0x01
    field[key] = base64.b64encode(bytes(raw)).decode()
    text = json.dumps(bundle)
    (folder / "release.sig").write_text(text[:len(text) // 2] if damage == "truncated" else text)
    assert problems(folder) == [("release.sig", "signature")]
    result = runner.invoke(app, ["release", "verify", str(folder)])
    lines = result.stdout.splitlines()
    assert result.exit_code == 1 and len(lines) == 2 and "Digest(" not in result.stdout, result.stdout
    words = "is not a readable signature bundle" if damage == "truncated" else "does not verify with"
    assert lines[0].startswith(f"release.sig: signature: {'release.sig ' if damage == 'truncated' else ''}{words}")
    assert "get the release again" in lines[0], lines[0]
