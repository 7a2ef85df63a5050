"""A local base model's license, as releases name it: the card's front matter, a LICENSE file, config.json; unknown
is said, with a warning from the build's base-model stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from registry.catalog.models import folder_license
from tests.tiny_models import make_base

APACHE = "\n                                 Apache License\n                           Version 2.0, January 2004\n"


@pytest.mark.parametrize(("files", "expected"), [
    ({"README.md": "---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# m\n"}, "Apache-2.0"),
    ({"README.md": "---\r\nlicense: 'mit'\r\n---\r\n"}, "MIT"),
    ({"README.md": "---\nlicense: other\nlicense_name: llama3.2\n---\n"}, "LicenseRef-llama3.2"),
    ({"README.md": "---\nlicense: other\n---\n"}, None),
    ({"README.md": "# no front matter\nlicense: mit\n", "LICENSE": APACHE}, "Apache-2.0"),
    ({"LICENSE.txt": "MIT License\n\nCopyright (c) 2024 Someone\n"}, "MIT"),
    ({"LICENSE": "SPDX-License-Identifier: BSD-3-Clause\n"}, "BSD-3-Clause"),
    ({"LICENSE": "Some custom terms nobody has named.\n"}, None),
    ({"config.json": json.dumps({"model_type": "llama", "license": "cc-by-4.0"})}, "CC-BY-4.0"),
    ({"README.md": "---\nlicense: cc-by-nc-4.0\n---\n", "LICENSE": APACHE}, "CC-BY-NC-4.0"),  # the card first
    ({}, None),
])
def test_the_license_comes_from_the_card_a_license_file_or_the_config(tmp_path: Path, files: dict[str, str],
                                                                       expected: str | None) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert folder_license(tmp_path) == expected


def test_an_unknown_license_is_said_and_warned(tmp_path: Path) -> None:
    from builder.stages.base_model import _given

    base = make_base("qwen2", tmp_path / "base", license=None)
    result = _given(base)
    assert result.stats["license"] is None and "license unknown" in result.detail
    assert result.warning is not None and "names no license" in result.warning
    named = _given(make_base("qwen2", tmp_path / "named"))
    assert named.warning is None and named.stats["license"] == "Apache-2.0" and named.stats["model_type"] == "qwen2"
