-- Catalog schema version 6: the judge. Every teacher sample the filters kept is scored by a judge model before it
-- is kept; its verdict is lineage (sample_judgement), the judge's requests are journaled beside the teacher's, and
-- v_sample_provenance says who judged a sample and how.

CREATE TABLE sample_judgement (
    run_id VARCHAR NOT NULL,
    sample_id VARCHAR NOT NULL,
    request_sha256 VARCHAR NOT NULL,
    judge_model_ref VARCHAR NOT NULL,
    rubric VARCHAR NOT NULL,
    rubric_sha256 VARCHAR NOT NULL,
    scores JSON,
    score INTEGER,
    threshold INTEGER NOT NULL,
    verdict VARCHAR NOT NULL,
    reason VARCHAR,
    PRIMARY KEY (run_id, sample_id)
);
COMMENT ON TABLE sample_judgement IS 'A judge''s verdict on a sample of a run: the scores of each rubric criterion (1-5), the lowest against the threshold, the judge model, the rubric and its hash, and the journaled request. A sample under the threshold, or whose judge answer had not every score, was dropped by that run (run_sample.drop_reason judge_below_threshold | judge_unparseable).';
COMMENT ON COLUMN sample_judgement.run_id IS 'The run that judged it; joins run.run_id and run_sample.run_id.';
COMMENT ON COLUMN sample_judgement.sample_id IS 'The sample judged; joins sample.sample_id and run_sample.sample_id.';
COMMENT ON COLUMN sample_judgement.request_sha256 IS 'The judge request (sha256 of its canonical JSON); joins teacher_request.request_sha256 (role judge), which holds the judge''s whole answer.';
COMMENT ON COLUMN sample_judgement.judge_model_ref IS 'The judge model asked; joins external_model.model_ref and run.judge_model_ref.';
COMMENT ON COLUMN sample_judgement.rubric IS 'The rubric template used, NAME_VERSION: knowledge_v1 (faithfulness to the document chunk, relevance of the question) | skill_v1 (following the task description).';
COMMENT ON COLUMN sample_judgement.rubric_sha256 IS 'sha256 over the rubric templates'' version and texts (64 hex digits); joins run.rubric_sha256. A changed template is a new hash.';
COMMENT ON COLUMN sample_judgement.scores IS 'JSON object criterion -> whole number 1-5, e.g. {"faithfulness": 5, "relevance": 4}; NULL when the answer had not every score (verdict unparseable).';
COMMENT ON COLUMN sample_judgement.score IS 'The lowest of the scores (1-5), compared with threshold; NULL when unparseable.';
COMMENT ON COLUMN sample_judgement.threshold IS 'The lowest score a kept sample may have (1-5), as configured for the run ([generate.judge] threshold).';
COMMENT ON COLUMN sample_judgement.verdict IS 'passed (kept) | below_threshold (score < threshold: dropped) | unparseable (not every score could be read: dropped).';
COMMENT ON COLUMN sample_judgement.reason IS 'The judge''s one-sentence reason (its whole answer, up to 500 characters, when unparseable), control characters escaped; NULL when it gave none.';

-- A sample's kept/drop_reason is now the newest run's decision on it (was: the first run's), so a judge added or
-- made stricter drops what an earlier run kept.
COMMENT ON COLUMN sample.kept IS 'The decision of the newest run that produced it: its filters (and judge) kept it. run_sample has every run''s decision.';
COMMENT ON COLUMN sample.drop_reason IS 'Why the newest run that produced it dropped it: empty_answer | too_long | near_duplicate | invalid_unicode | control_characters | unparseable (a teacher answer without a usable block) | judge_below_threshold | judge_unparseable (the judge''s verdict) | unplaced (import); NULL when kept.';

ALTER TABLE run ADD COLUMN judge_model_ref VARCHAR;
COMMENT ON COLUMN run.judge_model_ref IS 'The judge model that scored the run''s samples (joins external_model.model_ref and sample_judgement.judge_model_ref); NULL when no judge was asked.';
ALTER TABLE run ADD COLUMN rubric_sha256 VARCHAR;
COMMENT ON COLUMN run.rubric_sha256 IS 'sha256 of the judge''s rubric templates (joins sample_judgement.rubric_sha256); NULL when no judge was asked.';

ALTER TABLE teacher_request ADD COLUMN role VARCHAR DEFAULT 'teacher';
COMMENT ON COLUMN teacher_request.role IS 'Who was asked: teacher (a generation request) | judge (a request to score a sample; joins sample_judgement.request_sha256).';

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
       r.run_id, r.generator, r.teacher_model_ref, r.prompt_template_sha256, r.random_seed,
       j.judge_model_ref, j.rubric AS judge_rubric, j.rubric_sha256 AS judge_rubric_sha256,
       j.scores AS judge_scores, j.score AS judge_score, j.threshold AS judge_threshold
FROM sample s
LEFT JOIN seed_edge se USING (sample_id)
LEFT JOIN chunk_edge ce USING (sample_id)
LEFT JOIN contribution_version cv ON cv.contribution_id = se.e.contribution_id AND cv.version_id = se.e.version_id
LEFT JOIN (SELECT DISTINCT ON (doc_sha256) * FROM source_document ORDER BY doc_sha256, path) d
       ON d.doc_sha256 = ce.e.doc_sha256
LEFT JOIN run r ON r.run_id = coalesce(se.e.run_id, s.first_run_id)
LEFT JOIN sample_judgement j ON j.run_id = r.run_id AND j.sample_id = s.sample_id
WHERE s.kept;
COMMENT ON VIEW v_sample_provenance IS 'One row per kept sample: leaf, version, taxonomy commit, contributor, seed, chunk, document (repo, commit, path, license), the run (generator, teacher, template hash, seed) and who judged it and how (judge model, rubric and its hash, scores, threshold). A sample generated again unchanged is attributed to the newest run''s edge.';
COMMENT ON COLUMN v_sample_provenance.sample_id IS 'The kept sample; joins sample.sample_id.';
COMMENT ON COLUMN v_sample_provenance.kind IS 'sample.kind: knowledge | compositional_skill | foundational_skill.';
COMMENT ON COLUMN v_sample_provenance.contribution_id IS 'The leaf of the newest run''s seed edge; joins contribution.contribution_id. NULL without a seed edge.';
COMMENT ON COLUMN v_sample_provenance.version_id IS 'The version of that leaf (sha256 of its qna.yaml); joins contribution_version.version_id.';
COMMENT ON COLUMN v_sample_provenance.taxonomy_commit IS 'contribution_version.commit_sha of that version; NULL for an uncommitted edit.';
COMMENT ON COLUMN v_sample_provenance.contributor IS 'contribution_version.created_by of that version (a login; joins contributor.login).';
COMMENT ON COLUMN v_sample_provenance.seed_id IS 'The seed example; joins seed_example.seed_id.';
COMMENT ON COLUMN v_sample_provenance.chunk_sha256 IS 'The document chunk of the newest run''s chunk edge; joins source_chunk.chunk_sha256. NULL for skills.';
COMMENT ON COLUMN v_sample_provenance.doc_sha256 IS 'The document of that chunk; joins source_document.doc_sha256.';
COMMENT ON COLUMN v_sample_provenance.document_repo IS 'source_document.repo_url of the document.';
COMMENT ON COLUMN v_sample_provenance.document_commit IS 'source_document.repo_commit of the document.';
COMMENT ON COLUMN v_sample_provenance.document_path IS 'source_document.path (the first by path when the same bytes lie at several paths).';
COMMENT ON COLUMN v_sample_provenance.document_license IS 'source_document.license_spdx; NULL = unknown.';
COMMENT ON COLUMN v_sample_provenance.run_id IS 'The run of the seed edge, else the sample''s first run; joins run.run_id.';
COMMENT ON COLUMN v_sample_provenance.generator IS 'run.generator of that run.';
COMMENT ON COLUMN v_sample_provenance.teacher_model_ref IS 'run.teacher_model_ref; joins external_model.model_ref. NULL without a teacher.';
COMMENT ON COLUMN v_sample_provenance.prompt_template_sha256 IS 'run.prompt_template_sha256 of that run.';
COMMENT ON COLUMN v_sample_provenance.random_seed IS 'run.random_seed of that run.';
COMMENT ON COLUMN v_sample_provenance.judge_model_ref IS 'The judge that scored the sample in that run (sample_judgement.judge_model_ref; joins external_model.model_ref); NULL when the run had no judge.';
COMMENT ON COLUMN v_sample_provenance.judge_rubric IS 'sample_judgement.rubric: the rubric template it was scored with, e.g. knowledge_v1; NULL without a judge.';
COMMENT ON COLUMN v_sample_provenance.judge_rubric_sha256 IS 'sample_judgement.rubric_sha256: the hash of the rubric templates; NULL without a judge.';
COMMENT ON COLUMN v_sample_provenance.judge_scores IS 'sample_judgement.scores: JSON criterion -> 1-5; NULL without a judge.';
COMMENT ON COLUMN v_sample_provenance.judge_score IS 'sample_judgement.score: the lowest score (at least judge_threshold, since the sample was kept); NULL without a judge.';
COMMENT ON COLUMN v_sample_provenance.judge_threshold IS 'sample_judgement.threshold: the lowest score the run kept; NULL without a judge.';
