"""attribution.txt parsing and the license policy."""

from __future__ import annotations

from registry.attribution import parse
from registry.licenses import LicensePolicy, normalize

POLICY = LicensePolicy()


def test_real_world_variants_parse() -> None:
    text = ("Title of work: One\nLink to work: -\nRevision: N/A\nLicense of the work: CC-BY-SA-4.0\n"
            "Creator names: Wikipedia Authors\nTitle of work: Two\nLicense of the work: MIT\nCreator names: B\n")
    result = parse(text, "a/attribution.txt", POLICY)
    assert [(e.title, e.license_spdx, e.link, e.line) for e in result.entries] == [
        ("One", "CC-BY-SA-4.0", None, 1), ("Two", "MIT", None, 6)]
    assert result.findings == ()


def test_spellings_are_normalised_to_spdx_and_policy_applies() -> None:
    assert normalize("CC BY-NC-SA 4.0") == "CC-BY-NC-SA-4.0"
    assert normalize("apache 2.0") == "Apache-2.0"
    assert normalize("Public Domain") is None
    assert POLICY.allows("MIT OR GPL-3.0-only") and not POLICY.allows("MIT AND GPL-3.0-only")
    result = parse("Title of work: X\nLicense of the work: CC BY-NC-SA 4.0\nCreator names: Y\n", "p", POLICY)
    assert [(f.code, f.line) for f in result.findings] == [("TR304", 2)]
    assert "CC-BY-NC-SA-4.0" in result.findings[0].message


def test_missing_fields_and_unknown_licenses_are_reported_with_lines() -> None:
    result = parse("Title of work: X\n\nTitle of work: Y\nLicense of the work: Foo License\nCreator names: Z\n",
                   "p", POLICY)
    assert [(f.code, f.line) for f in result.findings] == [("TR302", 1), ("TR303", 4)]
    assert "license, creators" in result.findings[0].message
