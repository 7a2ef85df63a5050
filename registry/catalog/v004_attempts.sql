-- Catalog schema version 4: gate checks keyed by attempt, provenance from the newest run, license classes of
-- attributions.

ALTER TABLE policy_check ADD COLUMN attempt INTEGER;
COMMENT ON COLUMN policy_check.attempt IS 'Which try at cutting the release the check belongs to (1, 2, ...): a refused cut leaves its checks under its own attempt; the release''s own checks are those of its last attempt (v_release_checks).';
-- Catalogs of schema 3: each distinct check time of a release was one attempt
UPDATE policy_check p SET attempt = n.attempt
FROM (SELECT release_id, checked_at, dense_rank() OVER (PARTITION BY release_id ORDER BY checked_at) AS attempt
      FROM (SELECT DISTINCT release_id, checked_at FROM policy_check)) n
WHERE n.release_id IS NOT DISTINCT FROM p.release_id AND n.checked_at = p.checked_at;

-- A cut records checks only until its release exists, so the last attempt of a recorded release made it.
CREATE VIEW v_release_checks AS
SELECT p.* FROM policy_check p
JOIN (SELECT release_id, max(attempt) AS attempt FROM policy_check GROUP BY release_id) last
  ON last.release_id = p.release_id AND last.attempt = p.attempt
SEMI JOIN release r ON r.release_id = p.release_id;
COMMENT ON VIEW v_release_checks IS 'The gate checks of the cut that produced each release (refused attempts before it are left out; policy_check keeps them).';

-- A sample whose content did not change is linked from every version (and run) that generated it: the
-- provenance is that of the newest run's edge, i.e. the version the current data was generated from.
CREATE OR REPLACE VIEW v_sample_provenance AS
WITH edge AS (
    SELECT l.sample_id, l.parent_kind, l.parent_id, l.contribution_id, l.version_id, l.doc_sha256, l.run_id,
           coalesce(r.started_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS run_started
    FROM sample_lineage l LEFT JOIN run r USING (run_id)
    WHERE l.parent_kind IN ('seed', 'chunk')
), seed_edge AS (
    SELECT sample_id, arg_max(struct_pack(parent_id, contribution_id, version_id, run_id),
                              struct_pack(run_started, run_id, version_id, parent_id)) AS e
    FROM edge WHERE parent_kind = 'seed' GROUP BY sample_id
), chunk_edge AS (
    SELECT sample_id, arg_max(struct_pack(parent_id, doc_sha256),
                              struct_pack(run_started, run_id, parent_id)) AS e
    FROM edge WHERE parent_kind = 'chunk' GROUP BY sample_id
)
SELECT s.sample_id, s.kind, se.e.contribution_id, se.e.version_id, cv.commit_sha AS taxonomy_commit,
       cv.created_by AS contributor, se.e.parent_id AS seed_id, ce.e.parent_id AS chunk_sha256, d.doc_sha256,
       d.repo_url AS document_repo, d.repo_commit AS document_commit, d.path AS document_path,
       d.license_spdx AS document_license,
       r.run_id, r.generator, r.teacher_model_ref, r.prompt_template_sha256, r.random_seed
FROM sample s
LEFT JOIN seed_edge se USING (sample_id)
LEFT JOIN chunk_edge ce USING (sample_id)
LEFT JOIN contribution_version cv ON cv.contribution_id = se.e.contribution_id AND cv.version_id = se.e.version_id
LEFT JOIN (SELECT DISTINCT ON (doc_sha256) * FROM source_document ORDER BY doc_sha256, path) d
       ON d.doc_sha256 = ce.e.doc_sha256
LEFT JOIN run r ON r.run_id = coalesce(se.e.run_id, s.first_run_id)
WHERE s.kept;
COMMENT ON VIEW v_sample_provenance IS 'One row per kept sample: leaf, version, taxonomy commit, contributor, seed, chunk, document (repo, commit, path, license) and the run (generator, teacher, template hash, seed). A sample generated again unchanged is attributed to the newest run''s edge.';

-- Joins keyed by CASE rather than `ON kind = ... AND key = ...`: same rows, but DuckDB-WASM 1.4 plans the
-- latter as a nested loop (22 s vs 0.9 s in the browser at 10,000 contributions; bench/audit.py).
-- An attribution's class follows registry.licenses.classify (as source_document.license_class does), so a
-- license has one class whichever kind of source it comes from. Per sample and contribution only the edges of
-- the newest run's version count: an unchanged sample keeps its edge to the version before an edit, whose
-- attribution may have carried another license.
CREATE OR REPLACE VIEW v_sample_license AS
WITH newest AS (
    SELECT l.* FROM sample_lineage l LEFT JOIN run r USING (run_id)
    WHERE l.parent_kind IN ('chunk', 'seed')
    QUALIFY l.version_id IS NOT DISTINCT FROM arg_max(l.version_id, row(
        coalesce(r.started_at, TIMESTAMPTZ '1970-01-01 00:00:00+00'), l.run_id, l.version_id))
        OVER (PARTITION BY l.sample_id, l.contribution_id)
)
SELECT DISTINCT l.sample_id, l.parent_kind AS source_kind,
       coalesce(d.license_spdx, a.license_spdx) AS license_spdx,
       coalesce(d.license_class,
                CASE WHEN a.license_spdx IS NULL THEN 'unspecified'
                     WHEN upper(a.license_spdx) LIKE '%-NC%' THEN 'non_commercial'
                     ELSE 'commercial' END) AS license_class,
       l.doc_sha256, l.contribution_id
FROM newest l
LEFT JOIN (SELECT DISTINCT ON (doc_sha256) * FROM source_document ORDER BY doc_sha256, path) d
       ON d.doc_sha256 = CASE WHEN l.parent_kind = 'chunk' THEN l.doc_sha256 END
LEFT JOIN contribution_attribution ca ON ca.contribution_id = CASE WHEN l.parent_kind = 'seed' THEN l.contribution_id END
                                      AND ca.version_id = l.version_id
LEFT JOIN attribution a ON a.contribution_id = ca.contribution_id AND a.attribution_sha256 = ca.attribution_sha256;
COMMENT ON VIEW v_sample_license IS 'The licenses each sample derives from (through the newest run''s version of each contribution): documents for chunk edges, attribution.txt for seed edges, each license with one class (commercial | non_commercial | unspecified when unknown). NULL license_spdx = unknown. Count a sample once per license: count(DISTINCT sample_id).';

-- takedown_impact reaches every model descended from what a subject fed: models trained on its datasets, demo
-- base models whose tokenizer read it (init runs list their contributions and documents), and every model
-- trained or exported from those (run_input of kind model_artifact), followed to the end of the chain.
CREATE OR REPLACE MACRO takedown_impact(subject) AS TABLE
WITH RECURSIVE hit AS (
    SELECT DISTINCT sample_id FROM sample_lineage
    WHERE doc_sha256 = subject OR contribution_id = subject OR version_id = subject OR parent_id = subject
), hit_dataset AS (
    SELECT DISTINCT dataset_id FROM dataset_member WHERE sample_id IN (SELECT sample_id FROM hit)
), hit_model(artifact_id, kind) AS (
    SELECT ma.artifact_id, ma.kind FROM model_artifact ma
    JOIN run_input ri ON ri.run_id = ma.run_id
    WHERE (ri.input_kind = 'dataset' AND ri.input_id IN (SELECT dataset_id FROM hit_dataset))
       OR (ri.input_kind IN ('contribution', 'document') AND ri.input_id = subject)
    UNION
    SELECT ma.artifact_id, ma.kind FROM hit_model m
    JOIN run_input ri ON ri.input_kind = 'model_artifact' AND ri.input_id = m.artifact_id
    JOIN model_artifact ma ON ma.run_id = ri.run_id
)
SELECT 'sample' AS what, s.sample_id AS id, s.kind AS detail FROM sample s JOIN hit USING (sample_id)
UNION ALL
SELECT 'run', r.run_id, r.generator FROM run r
WHERE r.run_id IN (SELECT run_id FROM run_sample WHERE sample_id IN (SELECT sample_id FROM hit))
UNION ALL
SELECT 'dataset', d.dataset_id, d.name || '/' || d.split FROM dataset d JOIN hit_dataset USING (dataset_id)
UNION ALL
SELECT DISTINCT 'model', artifact_id, kind FROM hit_model
UNION ALL
SELECT DISTINCT 'release', ra.release_id, r.status FROM release_artifact ra JOIN release r USING (release_id)
WHERE (ra.kind = 'dataset' AND ra.ref_id IN (SELECT dataset_id FROM hit_dataset))
   OR (ra.kind = 'model_artifact' AND ra.ref_id IN (SELECT artifact_id FROM hit_model));
