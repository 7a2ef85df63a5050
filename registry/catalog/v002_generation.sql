-- Catalog schema version 2: generation runs, samples and their lineage.

CREATE TABLE external_model (
    model_ref VARCHAR PRIMARY KEY,
    revision VARCHAR,
    license_spdx VARCHAR,
    output_terms VARCHAR,
    weights_sha256 VARCHAR
);
COMMENT ON TABLE external_model IS 'Models the builder used or derived from (base and teacher models), with their license and the terms on their outputs.';

CREATE TABLE run (
    run_id VARCHAR PRIMARY KEY,
    stage VARCHAR NOT NULL,
    generator VARCHAR NOT NULL,
    teacher_model_ref VARCHAR,
    params JSON NOT NULL,
    random_seed BIGINT NOT NULL,
    prompt_template_sha256 VARCHAR,
    taxonomy_commit VARCHAR,
    builder_version VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    stats JSON
);
COMMENT ON TABLE run IS 'A generation run (PROV Activity): generator, teacher, parameters, seed, template hash. status: running | succeeded | failed.';

CREATE TABLE source_chunk (
    chunk_sha256 VARCHAR NOT NULL,
    doc_sha256 VARCHAR NOT NULL,
    chunker VARCHAR NOT NULL,
    ordinal INTEGER NOT NULL,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    size INTEGER NOT NULL,
    heading VARCHAR,
    PRIMARY KEY (doc_sha256, chunker, ordinal)
);
COMMENT ON TABLE source_chunk IS 'Chunks of knowledge documents: exact character ranges [char_start, char_end) of the document; chunk_sha256 = sha256 of the chunk text. chunker names the unit and size, e.g. words:300.';

CREATE TABLE sample (
    sample_id VARCHAR PRIMARY KEY,
    messages JSON NOT NULL,
    kind VARCHAR NOT NULL,
    n_words INTEGER NOT NULL,
    kept BOOLEAN NOT NULL,
    drop_reason VARCHAR,
    first_run_id VARCHAR NOT NULL
);
COMMENT ON TABLE sample IS 'Training samples. sample_id = sha256 of the canonical messages: the same content is one sample. kind: knowledge | compositional_skill | foundational_skill. Dropped samples stay, with drop_reason.';

CREATE TABLE run_sample (
    run_id VARCHAR NOT NULL,
    sample_id VARCHAR NOT NULL,
    kept BOOLEAN NOT NULL,
    drop_reason VARCHAR,
    PRIMARY KEY (run_id, sample_id)
);
COMMENT ON TABLE run_sample IS 'Which run produced which sample, and what that run''s filters decided.';

CREATE TABLE sample_lineage (
    sample_id VARCHAR NOT NULL,
    parent_kind VARCHAR NOT NULL,
    parent_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    contribution_id VARCHAR,
    version_id VARCHAR,
    doc_sha256 VARCHAR,
    run_id VARCHAR NOT NULL,
    method VARCHAR NOT NULL
);
COMMENT ON TABLE sample_lineage IS 'PROV wasDerivedFrom: sample -> seed | chunk | sample, with a role; contribution_id/version_id/doc_sha256 say which version or document the parent belongs to; method says how the edge is known (generated | text_match | ...).';

CREATE TABLE teacher_request (
    request_sha256 VARCHAR PRIMARY KEY,
    run_id VARCHAR NOT NULL,
    model_ref VARCHAR NOT NULL,
    request JSON NOT NULL,
    response JSON,
    status VARCHAR NOT NULL,
    attempts INTEGER NOT NULL,
    error VARCHAR,
    finished_at TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE teacher_request IS 'Every finished teacher request, keyed by the sha256 of the canonical request (model, messages, parameters, seed): a killed run resumes without sending any of them again. status: ok | failed.';

CREATE TABLE dataset (
    dataset_id VARCHAR PRIMARY KEY,
    name VARCHAR NOT NULL,
    split VARCHAR NOT NULL,
    row_count INTEGER NOT NULL,
    path VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    byte_size BIGINT NOT NULL,
    license_expression VARCHAR,
    params JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE dataset IS 'A dataset file written by `taxreg dataset build` (one row per split and format). dataset_id = sha256 of the file: identical inputs give identical ids.';

CREATE TABLE dataset_member (
    dataset_id VARCHAR NOT NULL,
    sample_id VARCHAR NOT NULL,
    copies INTEGER NOT NULL,
    PRIMARY KEY (dataset_id, sample_id)
);
COMMENT ON TABLE dataset_member IS 'Which samples a dataset file holds, and how many times (the mix can up-sample a kind).';

CREATE VIEW v_sample_provenance AS
WITH seed_edge AS (
    SELECT sample_id, any_value(parent_id) AS seed_id, any_value(contribution_id) AS contribution_id,
           any_value(version_id) AS version_id, any_value(run_id) AS run_id
    FROM sample_lineage WHERE parent_kind = 'seed' GROUP BY sample_id
), chunk_edge AS (
    SELECT sample_id, any_value(parent_id) AS chunk_sha256, any_value(doc_sha256) AS doc_sha256
    FROM sample_lineage WHERE parent_kind = 'chunk' GROUP BY sample_id
)
SELECT s.sample_id, s.kind, se.contribution_id, se.version_id, cv.commit_sha AS taxonomy_commit,
       cv.created_by AS contributor, se.seed_id, ce.chunk_sha256, d.doc_sha256, d.repo_url AS document_repo,
       d.repo_commit AS document_commit, d.path AS document_path, d.license_spdx AS document_license,
       r.run_id, r.generator, r.teacher_model_ref, r.prompt_template_sha256, r.random_seed
FROM sample s
LEFT JOIN seed_edge se USING (sample_id)
LEFT JOIN chunk_edge ce USING (sample_id)
LEFT JOIN contribution_version cv ON cv.contribution_id = se.contribution_id AND cv.version_id = se.version_id
LEFT JOIN (SELECT DISTINCT ON (doc_sha256) * FROM source_document ORDER BY doc_sha256, path) d
       ON d.doc_sha256 = ce.doc_sha256
LEFT JOIN run r ON r.run_id = coalesce(se.run_id, s.first_run_id)
WHERE s.kept;
COMMENT ON VIEW v_sample_provenance IS 'One row per kept sample: leaf, version, taxonomy commit, contributor, seed, chunk, document (repo, commit, path, license) and the run (generator, teacher, template hash, seed).';

CREATE VIEW v_orphan_samples AS
SELECT s.* FROM sample s
WHERE s.kept AND NOT EXISTS (SELECT 1 FROM sample_lineage l WHERE l.sample_id = s.sample_id);
COMMENT ON VIEW v_orphan_samples IS 'Kept samples without lineage: must be empty after any run (a release blocker).';

CREATE VIEW v_license_summary AS
WITH sample_license AS (
    SELECT DISTINCT l.sample_id, coalesce(d.license_spdx, a.license_spdx) AS license_spdx
    FROM sample_lineage l
    JOIN sample s ON s.sample_id = l.sample_id AND s.kept
    LEFT JOIN source_document d ON l.parent_kind = 'chunk' AND d.doc_sha256 = l.doc_sha256
    LEFT JOIN contribution_attribution ca ON l.parent_kind = 'seed' AND ca.contribution_id = l.contribution_id
                                          AND ca.version_id = l.version_id
    LEFT JOIN attribution a ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256
)
SELECT coalesce(license_spdx, 'UNKNOWN') AS license, count(DISTINCT sample_id) AS samples
FROM sample_license GROUP BY ALL ORDER BY samples DESC, license;
COMMENT ON VIEW v_license_summary IS 'Kept samples per source license (from the documents and the attributions they derive from); UNKNOWN is shown, not hidden.';

CREATE MACRO takedown_impact(subject) AS TABLE
WITH hit AS (
    SELECT DISTINCT sample_id FROM sample_lineage
    WHERE doc_sha256 = subject OR contribution_id = subject OR version_id = subject OR parent_id = subject
)
SELECT 'sample' AS what, s.sample_id AS id, s.kind AS detail FROM sample s JOIN hit USING (sample_id)
UNION ALL
SELECT 'run', r.run_id, r.generator FROM run r
WHERE r.run_id IN (SELECT run_id FROM run_sample WHERE sample_id IN (SELECT sample_id FROM hit));
