-- Catalog schema version 1: the registry spine (taxonomy, contributions, sources, validation).
-- Rows describing content (versions, seeds, documents, attributions) are append-only.

CREATE TABLE catalog_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
COMMENT ON TABLE catalog_meta IS 'Catalog bookkeeping: schema_version and the builder version that wrote it.';

CREATE TABLE index_run (
    run_id VARCHAR PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ NOT NULL,
    taxonomy_root VARCHAR NOT NULL,
    taxonomy_commit VARCHAR,
    builder_version VARCHAR NOT NULL,
    config_sha256 VARCHAR NOT NULL,
    inputs_sha256 VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    leaves_total INTEGER NOT NULL,
    leaves_parsed INTEGER NOT NULL,
    leaves_indexed INTEGER NOT NULL,
    leaves_retired INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    warnings INTEGER NOT NULL
);
COMMENT ON TABLE index_run IS 'One row per `taxreg index`: when, on which taxonomy commit, what it found. status: indexed | unchanged | indexed_with_errors.';
COMMENT ON COLUMN index_run.inputs_sha256 IS 'Hash of every input file''s path, size and mtime plus the config: equal means nothing changed.';

CREATE TABLE contributor (
    contributor_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    login VARCHAR NOT NULL,
    display_name VARCHAR,
    public_profile VARCHAR
);
COMMENT ON TABLE contributor IS 'People (and organizations, software) named by created_by in qna.yaml. contributor_id is the lower-cased login.';

CREATE TABLE taxonomy_commit (
    commit_sha VARCHAR PRIMARY KEY,
    parents VARCHAR[] NOT NULL,
    author VARCHAR NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL,
    subject VARCHAR NOT NULL,
    signed_off BOOLEAN NOT NULL
);
COMMENT ON TABLE taxonomy_commit IS 'Commits of the taxonomy git repository that touched the taxonomy folder (when it is a git repository).';

CREATE TABLE contribution (
    contribution_id VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,
    domain VARCHAR NOT NULL,
    created_by VARCHAR,
    status VARCHAR NOT NULL,
    current_version_id VARCHAR,
    first_seen_run VARCHAR NOT NULL,
    last_seen_run VARCHAR NOT NULL
);
COMMENT ON TABLE contribution IS 'A leaf of the taxonomy. contribution_id is its taxonomy path. kind: knowledge | compositional_skill | foundational_skill. status: active | invalid | retired | taken_down.';
COMMENT ON COLUMN contribution.domain IS 'The first folder below the top folder (below grounded/ for grounded skills), e.g. science.';
COMMENT ON COLUMN contribution.current_version_id IS 'sha256 of the qna.yaml bytes now in the tree (NULL when the leaf is retired or never passed validation).';

CREATE TABLE contribution_version (
    version_id VARCHAR NOT NULL,
    contribution_id VARCHAR NOT NULL,
    commit_sha VARCHAR,
    schema_version INTEGER NOT NULL,
    source_path VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    grounded BOOLEAN NOT NULL,
    created_by VARCHAR NOT NULL,
    knowledge_domain VARCHAR,
    task_description VARCHAR,
    document_outline VARCHAR,
    byte_size INTEGER NOT NULL,
    word_count INTEGER NOT NULL,
    document_repo VARCHAR,
    document_commit VARCHAR,
    document_patterns VARCHAR[],
    first_seen_run VARCHAR NOT NULL,
    PRIMARY KEY (contribution_id, version_id)
);
COMMENT ON TABLE contribution_version IS 'Every version of every leaf ever indexed (append-only). version_id = sha256 of the qna.yaml bytes.';
COMMENT ON COLUMN contribution_version.commit_sha IS 'The last taxonomy commit that touched the file, when the file is unchanged from that commit; NULL for uncommitted edits.';
COMMENT ON COLUMN contribution_version.document_patterns IS 'Knowledge: document.patterns as written; the seed examples are in seed_example, so every field of the file is kept.';

CREATE TABLE attribution (
    contribution_id VARCHAR NOT NULL,
    attribution_sha256 VARCHAR NOT NULL,
    ordinal INTEGER NOT NULL,
    title VARCHAR,
    link VARCHAR,
    revision VARCHAR,
    license_raw VARCHAR,
    license_spdx VARCHAR,
    creators VARCHAR,
    first_seen_run VARCHAR NOT NULL,
    PRIMARY KEY (contribution_id, attribution_sha256, ordinal)
);
COMMENT ON TABLE attribution IS 'Parsed attribution.txt, one row per source work. license_spdx is NULL when the text is not a known SPDX license.';

CREATE TABLE contribution_attribution (
    contribution_id VARCHAR NOT NULL,
    version_id VARCHAR NOT NULL,
    attribution_sha256 VARCHAR NOT NULL,
    PRIMARY KEY (contribution_id, version_id, attribution_sha256)
);
COMMENT ON TABLE contribution_attribution IS 'Which attribution.txt stood beside each version of a leaf.';

CREATE TABLE source_document (
    doc_sha256 VARCHAR NOT NULL,
    repo_url VARCHAR NOT NULL,
    repo_commit VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    title VARCHAR,
    media_type VARCHAR NOT NULL,
    byte_size BIGINT NOT NULL,
    license_spdx VARCHAR,
    license_class VARCHAR NOT NULL,
    attribution_required BOOLEAN,
    share_alike BOOLEAN,
    first_seen_run VARCHAR NOT NULL,
    PRIMARY KEY (doc_sha256, repo_url, repo_commit, path)
);
COMMENT ON TABLE source_document IS 'Knowledge documents resolved from the document cache, hashed. license_spdx comes from the referencing leaf''s attribution.txt (NULL = unknown). license_class: commercial | non_commercial | unspecified.';

CREATE TABLE contribution_source (
    contribution_id VARCHAR NOT NULL,
    version_id VARCHAR NOT NULL,
    doc_sha256 VARCHAR NOT NULL,
    pattern VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    PRIMARY KEY (contribution_id, version_id, doc_sha256, pattern, path)
);
COMMENT ON TABLE contribution_source IS 'Which documents (and through which document.patterns entry) a version of a knowledge leaf references.';

CREATE TABLE seed_example (
    seed_id VARCHAR NOT NULL,
    contribution_id VARCHAR NOT NULL,
    version_id VARCHAR NOT NULL,
    ordinal INTEGER NOT NULL,
    context VARCHAR,
    question VARCHAR NOT NULL,
    answer VARCHAR NOT NULL,
    line INTEGER NOT NULL
);
COMMENT ON TABLE seed_example IS 'Seed examples, one row per question/answer pair (knowledge: with its context), written once per contribution version. seed_id = sha256 of canonical JSON {context, question, answer}.';

CREATE TABLE finding (
    run_id VARCHAR NOT NULL,
    code VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    line INTEGER NOT NULL,
    col INTEGER NOT NULL,
    yaml_path VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    contribution_id VARCHAR
);
COMMENT ON TABLE finding IS 'Findings of the last validation (replaced by every index run). code: see `taxreg rules`.';

CREATE TABLE leaf_cache (
    source_path VARCHAR PRIMARY KEY,
    mtime_ns BIGINT NOT NULL,
    byte_size BIGINT NOT NULL,
    attribution_mtime_ns BIGINT,
    attribution_size BIGINT,
    documents_key VARCHAR NOT NULL,
    rules_key VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    version_id VARCHAR,
    created_by VARCHAR,
    findings JSON NOT NULL,
    question_keys JSON NOT NULL
);
COMMENT ON TABLE leaf_cache IS 'Internal: the verdict on each leaf, keyed by the stat of its files, the document cache and the rules, so unchanged leaves are not checked again.';
