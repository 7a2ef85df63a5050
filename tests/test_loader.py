"""Reading one file: marks, duplicate keys, bombs, encodings, and the typed record."""

from __future__ import annotations

import hashlib

import pytest

from registry.config import ValidationConfig
from registry.discovery import LeafFile
from registry.leaf import check_bytes
from registry.records import Kind, SeedExample, canonical_json
from registry.yamlfile import YamlProblem, parse
from tests.conftest import knowledge_yaml, skill_yaml


def leaf(path: str = "compositional_skills/writing/test/qna.yaml") -> LeafFile:
    return LeafFile(path.rsplit("/", 1)[0], path, f"/nonexistent/{path}")


def test_every_value_keeps_its_line_and_column() -> None:
    parsed = parse("version: 3\nseed_examples:\n  - question: q\n    answer: a\n")
    assert parsed.mark(("seed_examples", 0, "answer")) == (4, 13)
    assert parsed.key_mark(("version",)) == (1, 1)


def test_duplicate_key_names_both_places() -> None:
    with pytest.raises(YamlProblem) as caught:
        parse("a: 1\nb:\n  c: 1\n  c: 2\n")
    assert caught.value.code == "TR102"
    assert (caught.value.mark.line, caught.value.mark.col) == (4, 3)
    assert "'c'" in caught.value.message and "line 3" in caught.value.message


def test_alias_bomb_is_stopped_not_expanded() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)]
    with pytest.raises(YamlProblem) as caught:
        parse("\n".join(lines) + "\n", max_nodes=100_000)
    assert caught.value.code == "TR105"


def test_python_tags_are_never_constructed() -> None:
    with pytest.raises(YamlProblem) as caught:
        parse("x: !!python/object/apply:os.system ['echo pwned']\n")
    assert caught.value.code == "TR101"


def test_valid_skill_becomes_a_record_with_seed_lines() -> None:
    result = check_bytes(leaf(), skill_yaml().encode(), ValidationConfig())
    assert result.findings == ()
    version = result.version
    assert version is not None and version.kind is Kind.COMPOSITIONAL_SKILL
    assert [s.line for s in version.seeds] == [5, 7, 9, 11, 13]
    assert version.version_id == result.sha256
    assert len({s.seed_id for s in version.seeds}) == 5


def test_knowledge_seeds_are_one_per_question_with_their_context() -> None:
    result = check_bytes(leaf("knowledge/testing/doc/qna.yaml"), knowledge_yaml().encode(), ValidationConfig())
    version = result.version
    assert version is not None and version.document is not None
    assert len(version.seeds) == 15 and version.seeds[3].context == "Paragraph 1 says fact 1 about the topic."
    assert version.document.patterns == ("doc.md",) and version.document.pattern_lines[0] > 1


def test_seed_ids_are_content_addressed() -> None:
    a = check_bytes(leaf(), skill_yaml().encode(), ValidationConfig()).version
    b = check_bytes(leaf("compositional_skills/other/x/qna.yaml"), ("# moved\n" + skill_yaml()).encode(),
                    ValidationConfig()).version
    assert a is not None and b is not None
    assert a.version_id != b.version_id
    assert [s.seed_id for s in a.seeds] == [s.seed_id for s in b.seeds]


def test_latin1_byte_is_located() -> None:
    data = skill_yaml().replace("Answer number 2", "R\xe9ponse").encode("latin-1")
    result = check_bytes(leaf(), data, ValidationConfig())
    assert [(f.code, f.line, f.col) for f in result.findings] == [("TR103", 10, 14)]


def test_schema_errors_point_at_the_offending_item() -> None:
    text = skill_yaml().replace("  - question: Question number 3?\n", "  - question: [not, text]\n")
    result = check_bytes(leaf(), text.encode(), ValidationConfig())
    assert [(f.code, f.line, f.yaml_path) for f in result.findings] == [("TR203", 11, ".seed_examples[3].question")]
    assert result.version is None


def test_every_duplicate_key_is_reported() -> None:
    text = skill_yaml().replace("version: 3\n", "version: 3\nversion: 3\n").replace(
        "created_by: tester\n", "created_by: tester\ncreated_by: again\n")
    result = check_bytes(leaf(), text.encode(), ValidationConfig())
    assert [(f.code, f.line) for f in result.findings] == [("TR102", 2), ("TR102", 5)]


@pytest.mark.parametrize("context", [None, "A context with \"quotes\", a tab\there and é ☃ \u2028."])
def test_seed_id_is_the_sha256_of_canonical_json(context: str | None) -> None:
    seed = SeedExample.make(0, context, 'Why "this"?\n', "Because\\ of \x01 reasons.", 3)
    expected = canonical_json({"context": context, "question": 'Why "this"?\n', "answer": "Because\\ of \x01 reasons."})
    assert seed.seed_id == hashlib.sha256(expected.encode()).hexdigest()


def test_positions_are_found_through_lists_keys_and_aliases() -> None:
    parsed = parse("a: &x\n  - k: 1\n    v: two\n1: one\nb: *x\n")
    assert parsed.mark(("a", 0, "v")) == (3, 8)
    assert parsed.key_mark(("a", 0, "v")) == (3, 5)
    assert parsed.mark(("1",)) == (4, 4)  # a key that is not text is named by its text
    assert parsed.mark(("b", 0, "k")) == (2, 8)  # through the alias: where the anchored value is written
    assert parsed.mark(("a", 5), None) is None and parsed.mark(("nope",), None) is None
    assert parsed.item_lines(("a",)) == [{"k": 2, "v": 3}]
