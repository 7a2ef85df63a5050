-- Catalog schema version 3: builds, training and export runs, model artifacts, releases, policy gates, takedowns.

CREATE TABLE build (
    build_id VARCHAR PRIMARY KEY,
    taxonomy_commit VARCHAR,
    builder_version VARCHAR NOT NULL,
    config_sha256 VARCHAR NOT NULL,
    source_date_epoch BIGINT,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    status VARCHAR NOT NULL,
    stats JSON
);
COMMENT ON TABLE build IS 'One `taxreg build` (or release cut): the inputs it was keyed by and how it ended. status: running | succeeded | failed.';

ALTER TABLE run ADD COLUMN build_id VARCHAR;
COMMENT ON COLUMN run.build_id IS 'The build this run belonged to (NULL when run on its own).';
ALTER TABLE dataset ADD COLUMN build_id VARCHAR;
COMMENT ON COLUMN dataset.build_id IS 'The build that wrote this dataset file (NULL when built on its own).';

CREATE TABLE run_input (
    run_id VARCHAR NOT NULL,
    input_kind VARCHAR NOT NULL,
    input_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    PRIMARY KEY (run_id, input_kind, input_id, role)
);
COMMENT ON TABLE run_input IS 'PROV used: what a training or export run read. input_kind: dataset | model_artifact | external_model; role: train | eval | base | adapter ...';

CREATE TABLE model_artifact (
    artifact_id VARCHAR PRIMARY KEY,
    run_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    base_model VARCHAR NOT NULL,
    derived_from VARCHAR,
    format VARCHAR NOT NULL,
    path VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    byte_size BIGINT NOT NULL,
    metrics JSON,
    created_at TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE model_artifact IS 'A model directory a run wrote. kind: base | adapter | merged | onnx | onnx_int8 | onnx_int4 | tokenizer. artifact_id = sha256 = hash of the sorted artifact_file list (relpath, sha256); derived_from names the parent artifact or external model.';

CREATE TABLE artifact_file (
    artifact_id VARCHAR NOT NULL,
    relpath VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    byte_size BIGINT NOT NULL,
    PRIMARY KEY (artifact_id, relpath)
);
COMMENT ON TABLE artifact_file IS 'Every file of a model artifact with its sha256.';

CREATE TABLE release (
    release_id VARCHAR PRIMARY KEY,
    build_id VARCHAR,
    status VARCHAR NOT NULL,
    released_at TIMESTAMPTZ NOT NULL,
    path VARCHAR NOT NULL,
    license_expression VARCHAR,
    taxonomy_commit VARCHAR,
    manifest_sha256 VARCHAR NOT NULL,
    allowed JSON
);
COMMENT ON TABLE release IS 'A cut release: release_id is its version. status: candidate | published | yanked. allowed lists the policy gates overridden with --allow (also in the manifest).';

CREATE TABLE release_artifact (
    release_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    ref_id VARCHAR NOT NULL,
    relpath VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    PRIMARY KEY (release_id, kind, ref_id, relpath)
);
COMMENT ON TABLE release_artifact IS 'What a release holds. kind: dataset (ref_id = dataset_id) | model_artifact (ref_id = artifact_id) | file (ref_id = sha256 of any other file).';

CREATE TABLE policy_check (
    build_id VARCHAR,
    release_id VARCHAR,
    rule VARCHAR NOT NULL,
    subject VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    passed BOOLEAN NOT NULL,
    overridden BOOLEAN NOT NULL,
    details JSON,
    checked_at TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE policy_check IS 'Release gates stored as data: one row per rule and subject with its evidence. A failed, not overridden check at severity error blocks the release.';

CREATE TABLE takedown (
    subject VARCHAR PRIMARY KEY,
    subject_kind VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    requested_by VARCHAR,
    taken_down_at TIMESTAMPTZ NOT NULL
);
COMMENT ON TABLE takedown IS 'Documents (doc_sha256) and contributions (taxonomy path) taken down: the next build excludes every sample derived from them. subject_kind: document | contribution.';

CREATE OR REPLACE VIEW v_license_summary AS
WITH sample_license AS (
    SELECT DISTINCT l.sample_id, coalesce(d.license_spdx, a.license_spdx) AS license_spdx
    FROM sample_lineage l
    JOIN sample s ON s.sample_id = l.sample_id AND s.kept
    LEFT JOIN source_document d ON d.doc_sha256 = CASE WHEN l.parent_kind = 'chunk' THEN l.doc_sha256 END
    LEFT JOIN contribution_attribution ca
           ON ca.contribution_id = CASE WHEN l.parent_kind = 'seed' THEN l.contribution_id END
          AND ca.version_id = l.version_id
    LEFT JOIN attribution a ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256
)
SELECT coalesce(license_spdx, 'UNKNOWN') AS license, count(DISTINCT sample_id) AS samples
FROM sample_license GROUP BY ALL ORDER BY samples DESC, license;
COMMENT ON VIEW v_license_summary IS 'Kept samples per source license (from the documents and the attributions they derive from); UNKNOWN is shown, not hidden.';

CREATE VIEW v_release_samples AS
SELECT DISTINCT ra.release_id, dm.sample_id
FROM release_artifact ra JOIN dataset_member dm ON ra.kind = 'dataset' AND dm.dataset_id = ra.ref_id;
COMMENT ON VIEW v_release_samples IS 'Which samples each release trained on or ships (through its dataset files).';

-- Joins keyed by CASE rather than `ON kind = ... AND key = ...`: same rows, but DuckDB-WASM 1.4 plans the
-- latter as a nested loop (22 s vs 0.9 s in the browser at 10,000 contributions; bench/audit.py).
CREATE VIEW v_sample_license AS
SELECT DISTINCT l.sample_id, l.parent_kind AS source_kind,
       coalesce(d.license_spdx, a.license_spdx) AS license_spdx,
       coalesce(d.license_class, 'unspecified') AS license_class,
       l.doc_sha256, l.contribution_id
FROM sample_lineage l
LEFT JOIN (SELECT DISTINCT ON (doc_sha256) * FROM source_document ORDER BY doc_sha256, path) d
       ON d.doc_sha256 = CASE WHEN l.parent_kind = 'chunk' THEN l.doc_sha256 END
LEFT JOIN contribution_attribution ca ON ca.contribution_id = CASE WHEN l.parent_kind = 'seed' THEN l.contribution_id END
                                      AND ca.version_id = l.version_id
LEFT JOIN attribution a ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256
WHERE l.parent_kind IN ('chunk', 'seed');
COMMENT ON VIEW v_sample_license IS 'The licenses each sample derives from: documents for chunk edges, attribution.txt for seed edges. NULL license_spdx = unknown.';

CREATE VIEW v_release_license_summary AS
SELECT rs.release_id, coalesce(sl.license_spdx, 'UNKNOWN') AS license, sl.license_class,
       count(DISTINCT rs.sample_id) AS samples, count(DISTINCT sl.doc_sha256) AS documents,
       count(DISTINCT sl.contribution_id) AS contributions
FROM v_release_samples rs JOIN v_sample_license sl USING (sample_id)
GROUP BY ALL ORDER BY rs.release_id, samples DESC, license;
COMMENT ON VIEW v_release_license_summary IS 'Per release: license x class -> samples, documents, contributions. UNKNOWN is shown, not hidden.';

CREATE VIEW v_release_contributors AS
SELECT rs.release_id, p.contributor, count(DISTINCT p.contribution_id) AS contributions,
       count(DISTINCT rs.sample_id) AS samples
FROM v_release_samples rs JOIN v_sample_provenance p USING (sample_id)
WHERE p.contributor IS NOT NULL
GROUP BY ALL ORDER BY rs.release_id, samples DESC, p.contributor;
COMMENT ON VIEW v_release_contributors IS 'Per release: every contributor whose contributions its samples derive from, with counts.';

CREATE VIEW v_release_manifest AS
SELECT r.release_id, r.status, r.released_at, r.license_expression, r.taxonomy_commit, r.manifest_sha256,
       ra.kind, ra.ref_id, ra.relpath, ra.sha256
FROM release r JOIN release_artifact ra USING (release_id)
ORDER BY r.release_id, ra.relpath;
COMMENT ON VIEW v_release_manifest IS 'Every file of every release with its sha256 (the same list as the release''s manifest.json).';

CREATE VIEW v_teacher_terms AS
SELECT m.model_ref, m.revision, m.license_spdx, m.output_terms, count(DISTINCT rs.sample_id) AS samples,
       count(DISTINCT r.run_id) AS runs
FROM external_model m
JOIN run r ON r.teacher_model_ref = m.model_ref
LEFT JOIN run_sample rs ON rs.run_id = r.run_id AND rs.kept
GROUP BY ALL ORDER BY samples DESC, m.model_ref;
COMMENT ON VIEW v_teacher_terms IS 'Teacher models, the terms on their outputs, and how many kept samples they generated: output terms are a license too.';

CREATE OR REPLACE MACRO takedown_impact(subject) AS TABLE
WITH hit AS (
    SELECT DISTINCT sample_id FROM sample_lineage
    WHERE doc_sha256 = subject OR contribution_id = subject OR version_id = subject OR parent_id = subject
), hit_dataset AS (
    SELECT DISTINCT dataset_id FROM dataset_member WHERE sample_id IN (SELECT sample_id FROM hit)
), hit_model AS (
    SELECT DISTINCT ma.artifact_id, ma.kind FROM model_artifact ma
    JOIN run_input ri ON ri.run_id = ma.run_id AND ri.input_kind = 'dataset'
    WHERE ri.input_id IN (SELECT dataset_id FROM hit_dataset)
)
SELECT 'sample' AS what, s.sample_id AS id, s.kind AS detail FROM sample s JOIN hit USING (sample_id)
UNION ALL
SELECT 'run', r.run_id, r.generator FROM run r
WHERE r.run_id IN (SELECT run_id FROM run_sample WHERE sample_id IN (SELECT sample_id FROM hit))
UNION ALL
SELECT 'dataset', d.dataset_id, d.name || '/' || d.split FROM dataset d JOIN hit_dataset USING (dataset_id)
UNION ALL
SELECT 'model', artifact_id, kind FROM hit_model
UNION ALL
SELECT DISTINCT 'release', ra.release_id, r.status FROM release_artifact ra JOIN release r USING (release_id)
WHERE (ra.kind = 'dataset' AND ra.ref_id IN (SELECT dataset_id FROM hit_dataset))
   OR (ra.kind = 'model_artifact' AND ra.ref_id IN (SELECT artifact_id FROM hit_model));
