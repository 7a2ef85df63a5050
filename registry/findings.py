"""Findings and the catalogue of rule codes that produce them.

Every check in the registry reports through a stable code listed in ``RULES``. Codes never change
meaning; a retired check keeps its code reserved. The site's reference page and the CLI's
``taxreg rules`` are generated from this table, so documentation cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str  # one line: what the rule checks
    fix: str  # one line: what a contributor should do


class Finding(NamedTuple):
    code: str
    severity: Severity
    path: str  # posix path relative to the taxonomy root
    line: int  # 1-based
    col: int  # 1-based
    yaml_path: str  # ".seed_examples[2].question", "" when it concerns the whole file
    message: str

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line, self.col, self.code)


E, W = Severity.ERROR, Severity.WARNING

_RULES = [
    # Reading the file
    Rule("TR101", "yaml-syntax", E, "The file is valid YAML.",
         "Fix the YAML at the reported position (tabs are not allowed for indentation)."),
    Rule("TR102", "duplicate-key", E, "No mapping repeats a key.",
         "Remove or rename the repeated key; YAML keeps only the last one silently."),
    Rule("TR103", "encoding", E, "The file is UTF-8 text without control characters.",
         "Re-save the file as UTF-8 (no Latin-1 or binary bytes)."),
    Rule("TR104", "file-too-large", E, "The file is under the size limit (1 MiB by default).",
         "Split the contribution or move long text into a knowledge document."),
    Rule("TR105", "alias-expansion", E, "YAML anchors and aliases do not expand beyond the limit.",
         "Write the text out instead of using anchors and aliases."),
    Rule("TR106", "top-level-not-mapping", E, "The top level of qna.yaml is a mapping of keys.",
         "Start the file with `version:` and the other keys, not a list or a scalar."),
    Rule("TR107", "empty-file", E, "The file has content.", "Fill in the qna.yaml template."),
    Rule("TR108", "symlink-outside", E, "No symbolic link points outside the taxonomy root.",
         "Replace the link with the file itself."),
    Rule("TR109", "wrong-file-name", W, "Taxonomy files are named exactly `qna.yaml`.",
         "Rename the file to qna.yaml; it is not checked under its current name."),
    Rule("TR110", "byte-order-mark", W, "The file does not start with a byte order mark.",
         "Re-save the file as UTF-8 without BOM."),
    Rule("TR111", "unreadable", E, "The file can be read.", "Check the file's permissions and type."),
    Rule("TR112", "folder-unreadable", E, "Every folder of the taxonomy can be listed.",
         "Check the folder's permissions."),
    # Text layout the InstructLab linter rejects (yamllint, relaxed profile, error level)
    Rule("TR151", "trailing-spaces", E, "No line ends with spaces or tabs.", "Delete the trailing whitespace."),
    Rule("TR152", "final-newline", E, "The file ends with a newline.", "Add a newline at the end of the file."),
    Rule("TR153", "line-endings", E, "Lines end with LF, not CRLF.", "Convert the file to Unix line endings."),
    # InstructLab JSON Schema
    Rule("TR201", "missing-key", E, "Every required key is present.", "Add the missing key."),
    Rule("TR202", "unknown-key", E, "No key outside the schema is used.",
         "Remove the key or check its spelling against the schema."),
    Rule("TR203", "wrong-type", E, "Every value has the type the schema asks for.",
         "Use the type named in the message (text, list, number...)."),
    Rule("TR204", "too-few-items", E, "Lists have at least the required number of items.",
         "Add items until the minimum is reached (e.g. 5 seed examples, 3 Q&A pairs per context)."),
    Rule("TR205", "duplicate-item", E, "List items are unique.", "Remove or change the repeated item."),
    Rule("TR206", "empty-value", E, "Required text is not empty.", "Write the missing text."),
    Rule("TR207", "unsupported-version", E, "`version` is a schema version the registry knows (1-3).",
         "Set `version: 3`."),
    Rule("TR208", "deprecated-schema", E, "The schema version is not deprecated for this kind.",
         "Knowledge needs `version: 3` with a `document` section."),
    Rule("TR209", "schema", E, "The file satisfies the InstructLab schema.", "Follow the message."),
    # Attribution and licensing
    Rule("TR301", "attribution-missing", E, "The leaf has an attribution.txt beside qna.yaml.",
         "Add attribution.txt with title, link, revision, license and creator names."),
    Rule("TR306", "attribution-missing-legacy", W,
         "Foundational skills have an attribution.txt (InstructLab's own ship without one).",
         "Add attribution.txt naming the source and license of the seed examples."),
    Rule("TR302", "attribution-unparseable", E,
         "attribution.txt has the fields `Title of work`, `License of the work` and `Creator names`.",
         "Write one `Field: value` line per field; separate works with a blank line."),
    Rule("TR303", "license-unknown", E, "Each license is a known SPDX identifier or expression.",
         "Use an SPDX id such as CC-BY-4.0 (see https://spdx.org/licenses/)."),
    Rule("TR304", "license-not-allowed", E, "Each license is allowed by the registry's license policy.",
         "Use a source under an allowed license, or ask the maintainers to change the policy."),
    # Content guidance (InstructLab contribution guides)
    Rule("TR401", "context-too-long", W, "A seed context has at most 500 words.", "Shorten the context."),
    Rule("TR402", "qa-too-long", W, "A question and its answer have at most 250 words together.",
         "Shorten the question or the answer."),
    Rule("TR403", "leaf-too-long", W, "A whole qna.yaml has at most about 2,300 words.",
         "Trim the seed examples or split the contribution."),
    Rule("TR404", "duplicate-question", W, "No question repeats one from another leaf.",
         "Ask something new, or merge the two contributions."),
    Rule("TR405", "repeated-question", W, "No question repeats within a leaf.", "Make every question distinct."),
    # Knowledge documents
    Rule("TR501", "document-missing", E, "Every knowledge document is in the local document cache.",
         "Run `taxreg documents fetch` (needs network) or copy the files into the cache path shown."),
    Rule("TR502", "pattern-unsafe", E, "Document patterns stay inside the document repository.",
         "Use a relative pattern without `..` or a leading `/`."),
    Rule("TR503", "pattern-no-match", E, "Each document pattern matches at least one .md or .pdf file.",
         "Fix the pattern or the commit so that it names an existing document."),
    Rule("TR504", "context-not-in-document", W,
         "Each seed context appears in the referenced documents (provenance rests on it).",
         "Copy the context verbatim from the document."),
    Rule("TR506", "document-reference-invalid", E,
         "document.repo is a git URL and document.commit a commit id (hex), so the reference is pinned and safe.",
         "Use the repository's https URL and the full commit hash, not a branch or tag name."),
    Rule("TR505", "document-unreadable", E, "Matched markdown documents are readable UTF-8 text.",
         "Re-save the document as UTF-8."),
]

RULES: dict[str, Rule] = {rule.code: rule for rule in _RULES}


def finding(code: str, path: str, message: str, line: int = 1, col: int = 1, yaml_path: str = "") -> Finding:
    """A finding for a known rule code, with the rule's severity."""
    return Finding(code, RULES[code].severity, path, line, col, yaml_path, message)

