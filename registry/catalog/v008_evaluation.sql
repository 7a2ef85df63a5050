-- Catalog schema version 8: what each contribution did to the model. An evaluation run (`taxreg eval`, the build's
-- evaluate stage) scores the base model and the fine-tuned model, both as exported ONNX graphs, on each
-- contribution's evaluation set (test-split samples and seed questions no training sample holds) and on a
-- general-ability guard set; it stores every item, every per-item score, and per contribution and metric the
-- mean change with a seeded bootstrap interval. The views say which changes are improvements, noise or
-- regressions beyond the thresholds of taxreg.toml [eval] (the eval.no_regression gate reads the same rule).

CREATE TABLE eval_run (
    run_id VARCHAR PRIMARY KEY,
    tuned_artifact_id VARCHAR NOT NULL,
    base_artifact_id VARCHAR NOT NULL,
    dataset_id VARCHAR,
    eval_set_sha256 VARCHAR NOT NULL,
    items INTEGER NOT NULL,
    contributions INTEGER NOT NULL,
    empty_contributions INTEGER NOT NULL,
    metrics VARCHAR[] NOT NULL,
    judge_model_ref VARCHAR,
    judge_template_sha256 VARCHAR,
    random_seed BIGINT NOT NULL,
    bootstrap_resamples INTEGER NOT NULL,
    confidence_level DOUBLE NOT NULL,
    results_sha256 VARCHAR NOT NULL
);
COMMENT ON TABLE eval_run IS 'One evaluation run: which ONNX models were compared on which evaluation set, with which metrics, judge, seed and bootstrap. Its run row (run.stage = evaluate) holds the parameters, timings and status; its items, scores and effects are in eval_item, eval_score and eval_effect.';
COMMENT ON COLUMN eval_run.run_id IS 'Random id of the run (uuid4, 32 hex digits); joins run.run_id (stage evaluate) and eval_item/eval_score/eval_effect.run_id.';
COMMENT ON COLUMN eval_run.tuned_artifact_id IS 'The fine-tuned model evaluated: model_artifact.artifact_id of the fp32 ONNX export (kind onnx), as a release ships it (release_artifact.ref_id).';
COMMENT ON COLUMN eval_run.base_artifact_id IS 'The model it was fine-tuned from, as ONNX: model_artifact.artifact_id of kind onnx_base (the same graph with the base weights).';
COMMENT ON COLUMN eval_run.dataset_id IS 'The test split the evaluation set drew its samples from (dataset.dataset_id = sha256 of the file); NULL when the dataset folder was not one the catalog recorded.';
COMMENT ON COLUMN eval_run.eval_set_sha256 IS 'sha256 of the canonical JSON of every evaluation item (id, contribution, source, prompt, reference, choices): the same set gives the same hash.';
COMMENT ON COLUMN eval_run.items IS 'Evaluation items scored, the guard set included (rows of eval_item for this run).';
COMMENT ON COLUMN eval_run.contributions IS 'Active contributions the run looked at, with or without items.';
COMMENT ON COLUMN eval_run.empty_contributions IS 'Contributions with no item held out of training: nothing was measured for them (eval_effect has no row; never a zero).';
COMMENT ON COLUMN eval_run.metrics IS 'The metrics scored: nll (per-token negative log-likelihood of the reference, nats), mc_acc and mc_acc_norm (multiple choice, knowledge), f1 and rouge_l (greedy answer vs reference), judge (LLM judge, when one was given).';
COMMENT ON COLUMN eval_run.judge_model_ref IS 'The LLM judge model (an OpenAI-compatible endpoint''s model name); NULL when no judge was used. Its requests are journaled in teacher_request with this run_id.';
COMMENT ON COLUMN eval_run.judge_template_sha256 IS 'sha256 of the versioned judge rubric templates (builder/evaluation/templates); NULL without a judge.';
COMMENT ON COLUMN eval_run.random_seed IS 'Seed of the multiple-choice order and of every bootstrap (each contribution and metric draws from its own stream derived from it).';
COMMENT ON COLUMN eval_run.bootstrap_resamples IS 'Bootstrap resamples per interval (percentile method, items resampled with replacement).';
COMMENT ON COLUMN eval_run.confidence_level IS 'Confidence level of the intervals, e.g. 0.95.';
COMMENT ON COLUMN eval_run.results_sha256 IS 'sha256 of the evaluation.json the run wrote beside the model (model/evaluation.json; a release ships it and its manifest holds this digest).';

CREATE TABLE eval_item (
    run_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    contribution_id VARCHAR,
    source VARCHAR NOT NULL,
    sample_id VARCHAR,
    seed_id VARCHAR,
    prompt VARCHAR NOT NULL,
    reference VARCHAR NOT NULL,
    choices VARCHAR[],
    correct_choice INTEGER,
    base_answer VARCHAR,
    tuned_answer VARCHAR
);
COMMENT ON TABLE eval_item IS 'Every question an evaluation run asked both models, with the reference answer, the choices of a multiple-choice item and what each model answered (greedy). An auditor goes from a sample to its scores through sample_id (or seed_id), see v_eval_provenance.';
COMMENT ON COLUMN eval_item.run_id IS 'The evaluation run; joins eval_run.run_id.';
COMMENT ON COLUMN eval_item.item_id IS 'sha256 of the canonical messages (prompt turns and the reference answer), as a sample_id is made: an item equal to a training sample has that sample''s id, which is how a leak into training is found.';
COMMENT ON COLUMN eval_item.contribution_id IS 'The contribution the item measures (taxonomy path; joins contribution.contribution_id); NULL for the guard set.';
COMMENT ON COLUMN eval_item.source IS 'test (a test-split sample) | seed (a seed example no training sample holds) | closed_book (a knowledge seed''s question without its context) | guard (the general-ability guard set, builder/evaluation/guard_v1.jsonl).';
COMMENT ON COLUMN eval_item.sample_id IS 'For source test: the sample (sample.sample_id, equal to item_id); NULL otherwise.';
COMMENT ON COLUMN eval_item.seed_id IS 'The seed example the item was drawn from (seed_example.seed_id) for sources seed, closed_book and test samples generated from one seed; NULL otherwise.';
COMMENT ON COLUMN eval_item.prompt IS 'The last user turn the models were given (after the system prompt), as text.';
COMMENT ON COLUMN eval_item.reference IS 'The reference answer: the test sample''s assistant turn or the seed''s answer.';
COMMENT ON COLUMN eval_item.choices IS 'Multiple choice (knowledge items): the reference and up to 3 distractors (other answers of the same leaf and document), in the order shown; NULL for other items.';
COMMENT ON COLUMN eval_item.correct_choice IS 'Index (from 0) of the reference in choices; NULL without choices.';
COMMENT ON COLUMN eval_item.base_answer IS 'The base model''s greedy answer (up to [eval] max_new_tokens tokens).';
COMMENT ON COLUMN eval_item.tuned_answer IS 'The fine-tuned model''s greedy answer.';

CREATE TABLE eval_score (
    run_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    contribution_id VARCHAR,
    metric VARCHAR NOT NULL,
    base_value DOUBLE NOT NULL,
    tuned_value DOUBLE NOT NULL
);
COMMENT ON TABLE eval_score IS 'One item''s score by one metric, for the base and for the fine-tuned model. A metric that does not apply to an item (mc_* without choices, judge without a judge or with an unparseable verdict) has no row.';
COMMENT ON COLUMN eval_score.run_id IS 'The evaluation run; joins eval_run.run_id.';
COMMENT ON COLUMN eval_score.item_id IS 'The item; joins eval_item.item_id with run_id.';
COMMENT ON COLUMN eval_score.contribution_id IS 'The contribution the item measures; NULL for the guard set.';
COMMENT ON COLUMN eval_score.metric IS 'nll (per-token negative log-likelihood of the reference answer and end-of-turn token, nats; lower is better) | mc_acc (1 when the reference has the highest summed log-likelihood of the choices) | mc_acc_norm (the same, log-likelihood per byte of the choice) | f1 (token F1 of the greedy answer: ROUGE-1 F-measure of rouge-score) | rouge_l (ROUGE-L F-measure) | judge (LLM judge score scaled to 0-1).';
COMMENT ON COLUMN eval_score.base_value IS 'The base model''s value.';
COMMENT ON COLUMN eval_score.tuned_value IS 'The fine-tuned model''s value.';

CREATE TABLE eval_effect (
    run_id VARCHAR NOT NULL,
    contribution_id VARCHAR,
    scope VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    items INTEGER NOT NULL,
    base_mean DOUBLE NOT NULL,
    tuned_mean DOUBLE NOT NULL,
    delta DOUBLE NOT NULL,
    delta_low DOUBLE,
    delta_high DOUBLE,
    higher_is_better BOOLEAN NOT NULL,
    threshold DOUBLE NOT NULL,
    chance DOUBLE
);
COMMENT ON TABLE eval_effect IS 'Per contribution (or the guard set) and metric: mean base and fine-tuned values over its items, the change and its seeded bootstrap interval. A contribution with no items has no row.';
COMMENT ON COLUMN eval_effect.run_id IS 'The evaluation run; joins eval_run.run_id.';
COMMENT ON COLUMN eval_effect.contribution_id IS 'The contribution (taxonomy path); NULL for the guard set.';
COMMENT ON COLUMN eval_effect.scope IS 'contribution | guard.';
COMMENT ON COLUMN eval_effect.metric IS 'The metric, as in eval_score.metric: nll, mc_acc, mc_acc_norm, f1, rouge_l or judge.';
COMMENT ON COLUMN eval_effect.items IS 'Items the means are over.';
COMMENT ON COLUMN eval_effect.base_mean IS 'Mean of base_value over the items (nll: nats per token; perplexity = exp(base_mean)).';
COMMENT ON COLUMN eval_effect.tuned_mean IS 'Mean of tuned_value over the items.';
COMMENT ON COLUMN eval_effect.delta IS 'tuned_mean - base_mean (for nll a negative delta is an improvement; see higher_is_better).';
COMMENT ON COLUMN eval_effect.delta_low IS 'Lower bound of the bootstrap interval of delta (paired: items resampled with replacement, percentile method, eval_run.confidence_level); NULL with fewer than 2 items (no interval can be drawn).';
COMMENT ON COLUMN eval_effect.delta_high IS 'Upper bound of the bootstrap interval of delta; NULL with fewer than 2 items.';
COMMENT ON COLUMN eval_effect.higher_is_better IS 'True when a larger value is better (accuracy, F1, ROUGE-L, judge); false for nll.';
COMMENT ON COLUMN eval_effect.threshold IS 'How much worse the metric may get before it is a regression, from taxreg.toml [eval] when the run was made (nll: nats per token; the others: points on a 0-1 scale).';
COMMENT ON COLUMN eval_effect.chance IS 'mc_acc and mc_acc_norm: the accuracy of guessing (mean of 1 / number of choices over the items); NULL for other metrics.';

CREATE VIEW v_contribution_impact AS
WITH released AS (
    SELECT DISTINCT release_id, ref_id FROM release_artifact WHERE kind = 'model_artifact'
), runs AS (
    SELECT e.run_id, e.tuned_artifact_id, r.started_at,
           row_number() OVER (PARTITION BY e.tuned_artifact_id ORDER BY r.started_at DESC, e.run_id DESC) = 1 AS latest
    FROM eval_run e JOIN run r USING (run_id) WHERE r.status = 'succeeded'
)
SELECT rel.release_id, x.run_id, x.latest, x.tuned_artifact_id, e.contribution_id, e.scope, c.kind, c.domain,
       e.metric, e.items, e.base_mean, e.tuned_mean, e.delta, e.delta_low, e.delta_high, e.higher_is_better,
       CASE WHEN e.higher_is_better THEN e.delta ELSE -e.delta END AS improvement,
       CASE WHEN e.higher_is_better THEN e.delta_low ELSE -e.delta_high END AS improvement_low,
       CASE WHEN e.higher_is_better THEN e.delta_high ELSE -e.delta_low END AS improvement_high,
       CASE WHEN e.delta_low IS NULL THEN 'no interval'
            WHEN (CASE WHEN e.higher_is_better THEN e.delta_low ELSE -e.delta_high END) > 0 THEN 'improved'
            WHEN (CASE WHEN e.higher_is_better THEN e.delta_high ELSE -e.delta_low END) < 0 THEN 'worse'
            ELSE 'noise' END AS verdict,
       e.threshold, e.chance
FROM eval_effect e
JOIN runs x USING (run_id)
LEFT JOIN released rel ON rel.ref_id = x.tuned_artifact_id
LEFT JOIN contribution c ON c.contribution_id = e.contribution_id;
COMMENT ON VIEW v_contribution_impact IS 'What each contribution (and the guard set) did to the model: per release that ships the evaluated model (NULL: not released), evaluation run and metric, the change with its interval, signed as an improvement, and a verdict (improved | worse | noise when the interval holds 0 | no interval). latest marks the newest successful run of a model.';
COMMENT ON COLUMN v_contribution_impact.release_id IS 'A release that ships the evaluated model (release.release_id); NULL when no release does. A model in two releases gives two rows.';
COMMENT ON COLUMN v_contribution_impact.run_id IS 'The evaluation run; joins eval_run.run_id.';
COMMENT ON COLUMN v_contribution_impact.latest IS 'True for the newest successful evaluation run of this model (filter on it for one row per release, contribution and metric).';
COMMENT ON COLUMN v_contribution_impact.tuned_artifact_id IS 'The evaluated fine-tuned ONNX model (model_artifact.artifact_id).';
COMMENT ON COLUMN v_contribution_impact.contribution_id IS 'The contribution (taxonomy path); NULL for the guard set.';
COMMENT ON COLUMN v_contribution_impact.scope IS 'contribution | guard.';
COMMENT ON COLUMN v_contribution_impact.kind IS 'The contribution''s kind (knowledge | compositional_skill | foundational_skill); NULL for the guard set.';
COMMENT ON COLUMN v_contribution_impact.domain IS 'The contribution''s domain (contribution.domain); NULL for the guard set.';
COMMENT ON COLUMN v_contribution_impact.metric IS 'The metric, as in eval_score.metric: nll, mc_acc, mc_acc_norm, f1, rouge_l or judge.';
COMMENT ON COLUMN v_contribution_impact.items IS 'Items the means are over.';
COMMENT ON COLUMN v_contribution_impact.base_mean IS 'Mean base value (eval_effect.base_mean).';
COMMENT ON COLUMN v_contribution_impact.tuned_mean IS 'Mean fine-tuned value (eval_effect.tuned_mean).';
COMMENT ON COLUMN v_contribution_impact.delta IS 'tuned_mean - base_mean.';
COMMENT ON COLUMN v_contribution_impact.delta_low IS 'Lower bound of the bootstrap interval of delta; NULL with fewer than 2 items.';
COMMENT ON COLUMN v_contribution_impact.delta_high IS 'Upper bound of the bootstrap interval of delta; NULL with fewer than 2 items.';
COMMENT ON COLUMN v_contribution_impact.higher_is_better IS 'True when a larger value is better; false for nll.';
COMMENT ON COLUMN v_contribution_impact.improvement IS 'The change signed so that positive is better: delta, or -delta for nll.';
COMMENT ON COLUMN v_contribution_impact.improvement_low IS 'Lower bound of the interval of improvement.';
COMMENT ON COLUMN v_contribution_impact.improvement_high IS 'Upper bound of the interval of improvement.';
COMMENT ON COLUMN v_contribution_impact.verdict IS 'improved (the whole interval above 0) | worse (the whole interval below 0) | noise (the interval holds 0) | no interval (fewer than 2 items).';
COMMENT ON COLUMN v_contribution_impact.threshold IS 'How much worse the metric may get before it is a regression (eval_effect.threshold).';
COMMENT ON COLUMN v_contribution_impact.chance IS 'Multiple choice: the accuracy of guessing; NULL for other metrics.';

CREATE VIEW v_eval_regressions AS
SELECT * FROM v_contribution_impact
WHERE verdict = 'worse' AND improvement < -threshold;
COMMENT ON VIEW v_eval_regressions IS 'Contributions (and the guard set) that got worse beyond noise and beyond their threshold: the whole interval of the improvement below 0 and the change worse than taxreg.toml [eval]''s allowance. The eval.no_regression release gate fails on them.';
COMMENT ON COLUMN v_eval_regressions.release_id IS 'A release that ships the evaluated model; NULL when none does.';
COMMENT ON COLUMN v_eval_regressions.run_id IS 'The evaluation run; joins eval_run.run_id.';
COMMENT ON COLUMN v_eval_regressions.latest IS 'True for the newest successful evaluation run of this model.';
COMMENT ON COLUMN v_eval_regressions.tuned_artifact_id IS 'The evaluated fine-tuned ONNX model (model_artifact.artifact_id).';
COMMENT ON COLUMN v_eval_regressions.contribution_id IS 'The contribution that regressed; NULL for the guard set.';
COMMENT ON COLUMN v_eval_regressions.scope IS 'contribution | guard.';
COMMENT ON COLUMN v_eval_regressions.kind IS 'The contribution''s kind; NULL for the guard set.';
COMMENT ON COLUMN v_eval_regressions.domain IS 'The contribution''s domain; NULL for the guard set.';
COMMENT ON COLUMN v_eval_regressions.metric IS 'The metric that got worse (as eval_score.metric).';
COMMENT ON COLUMN v_eval_regressions.items IS 'Items the means are over.';
COMMENT ON COLUMN v_eval_regressions.base_mean IS 'Mean base value.';
COMMENT ON COLUMN v_eval_regressions.tuned_mean IS 'Mean fine-tuned value.';
COMMENT ON COLUMN v_eval_regressions.delta IS 'tuned_mean - base_mean.';
COMMENT ON COLUMN v_eval_regressions.delta_low IS 'Lower bound of the bootstrap interval of delta.';
COMMENT ON COLUMN v_eval_regressions.delta_high IS 'Upper bound of the bootstrap interval of delta.';
COMMENT ON COLUMN v_eval_regressions.higher_is_better IS 'True when a larger value is better; false for nll.';
COMMENT ON COLUMN v_eval_regressions.improvement IS 'The change signed so that positive is better (negative here).';
COMMENT ON COLUMN v_eval_regressions.improvement_low IS 'Lower bound of the interval of improvement.';
COMMENT ON COLUMN v_eval_regressions.improvement_high IS 'Upper bound of the interval of improvement (below 0 here).';
COMMENT ON COLUMN v_eval_regressions.verdict IS 'Always worse here.';
COMMENT ON COLUMN v_eval_regressions.threshold IS 'The allowance the change went past.';
COMMENT ON COLUMN v_eval_regressions.chance IS 'Multiple choice: the accuracy of guessing; NULL for other metrics.';

-- From a sample (or a seed) to "did the model learn it": every score with the item's provenance.
CREATE VIEW v_eval_provenance AS
SELECT i.run_id, e.tuned_artifact_id, e.base_artifact_id, i.item_id, i.source, i.contribution_id,
       c.created_by AS contributor, i.sample_id, coalesce(i.seed_id, p.seed_id) AS seed_id, p.doc_sha256,
       p.document_license, s.metric, s.base_value, s.tuned_value, s.tuned_value - s.base_value AS delta,
       i.prompt, i.reference, i.base_answer, i.tuned_answer
FROM eval_item i
JOIN eval_run e USING (run_id)
JOIN eval_score s ON s.run_id = i.run_id AND s.item_id = i.item_id
                 AND s.contribution_id IS NOT DISTINCT FROM i.contribution_id
LEFT JOIN contribution c ON c.contribution_id = i.contribution_id
LEFT JOIN v_sample_provenance p ON p.sample_id = i.sample_id;
COMMENT ON VIEW v_eval_provenance IS 'Every evaluation score with where its item came from: the sample (test split) or seed, its contribution, contributor and document. SELECT * FROM v_eval_provenance WHERE sample_id = ''...'' answers "did the model learn this sample".';
COMMENT ON COLUMN v_eval_provenance.run_id IS 'The evaluation run; joins eval_run.run_id.';
COMMENT ON COLUMN v_eval_provenance.tuned_artifact_id IS 'The fine-tuned ONNX model scored (model_artifact.artifact_id).';
COMMENT ON COLUMN v_eval_provenance.base_artifact_id IS 'The base ONNX model scored (model_artifact.artifact_id, kind onnx_base).';
COMMENT ON COLUMN v_eval_provenance.item_id IS 'The item (eval_item.item_id).';
COMMENT ON COLUMN v_eval_provenance.source IS 'test | seed | closed_book | guard (eval_item.source).';
COMMENT ON COLUMN v_eval_provenance.contribution_id IS 'The contribution the item measures; NULL for the guard set.';
COMMENT ON COLUMN v_eval_provenance.contributor IS 'The contribution''s created_by login; joins contributor.login.';
COMMENT ON COLUMN v_eval_provenance.sample_id IS 'The test-split sample the item is (joins sample.sample_id and v_sample_provenance.sample_id); NULL for seed, closed_book and guard items.';
COMMENT ON COLUMN v_eval_provenance.seed_id IS 'The seed example behind the item (joins seed_example.seed_id); NULL when none.';
COMMENT ON COLUMN v_eval_provenance.doc_sha256 IS 'The knowledge document the sample derives from (joins source_document.doc_sha256); NULL when none.';
COMMENT ON COLUMN v_eval_provenance.document_license IS 'That document''s SPDX license; NULL when unknown or none.';
COMMENT ON COLUMN v_eval_provenance.metric IS 'The metric, as in eval_score.metric: nll, mc_acc, mc_acc_norm, f1, rouge_l or judge.';
COMMENT ON COLUMN v_eval_provenance.base_value IS 'The base model''s value.';
COMMENT ON COLUMN v_eval_provenance.tuned_value IS 'The fine-tuned model''s value.';
COMMENT ON COLUMN v_eval_provenance.delta IS 'tuned_value - base_value (nll: negative is better).';
COMMENT ON COLUMN v_eval_provenance.prompt IS 'The question asked (eval_item.prompt).';
COMMENT ON COLUMN v_eval_provenance.reference IS 'The reference answer.';
COMMENT ON COLUMN v_eval_provenance.base_answer IS 'The base model''s greedy answer.';
COMMENT ON COLUMN v_eval_provenance.tuned_answer IS 'The fine-tuned model''s greedy answer.';
