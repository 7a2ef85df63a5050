-- Catalog schema version 5: every column of every table and view documented with COMMENT ON (and the
-- takedown_impact macro), so `SELECT table_name, column_name, comment FROM duckdb_columns()` answers what each
-- column holds, in what unit or format, and how it joins. Written from what the writers store
-- (registry/catalog/*.py and the stages that call them).
-- A later migration that adds a column, or replaces a view (CREATE OR REPLACE drops its column comments),
-- comments them again: tests/test_catalog_docs.py fails on any column without one.

-- catalog_meta
COMMENT ON COLUMN catalog_meta.key IS 'Setting name: schema_version, written_by, catalog_id (random, minted once per catalog file; stage keys include it); a public copy adds public_copy.* notes on what it left out or rewrote.';
COMMENT ON COLUMN catalog_meta.value IS 'Setting value as text: schema_version is the number of migration scripts applied; written_by is "taxonomy-registry VERSION".';

-- index_run
COMMENT ON COLUMN index_run.run_id IS 'Random id of the index run (uuid4, 32 hex digits); finding.run_id, and the first_seen_run/last_seen_run columns of content tables, point at it.';
COMMENT ON COLUMN index_run.started_at IS 'Wall-clock time the run started (UTC).';
COMMENT ON COLUMN index_run.finished_at IS 'Wall-clock time the run wrote this row, just before its commit (UTC).';
COMMENT ON COLUMN index_run.taxonomy_root IS 'Absolute path of the taxonomy folder on the machine that ran the index (not published).';
COMMENT ON COLUMN index_run.taxonomy_commit IS 'HEAD of the taxonomy git repository when the run started (40 hex digits; joins taxonomy_commit.commit_sha); NULL when the taxonomy is not a git repository.';
COMMENT ON COLUMN index_run.builder_version IS 'Version of taxonomy-registry that ran the index.';
COMMENT ON COLUMN index_run.config_sha256 IS 'The rules key (ValidationConfig.file_rules_key): sha256 over the limits, the license policy, the versions of the checking packages and a digest of the rule code; joins leaf_cache.rules_key. An unchanged run copies the last run''s.';
COMMENT ON COLUMN index_run.status IS 'indexed | indexed_with_errors (--allow-errors) | unchanged (inputs_sha256 equal to the last run''s: nothing was read or written but this row).';
COMMENT ON COLUMN index_run.leaves_total IS 'Leaves (qna.yaml files) found in the tree.';
COMMENT ON COLUMN index_run.leaves_parsed IS 'Leaves checked anew; the others took their verdict from leaf_cache (0 for an unchanged run).';
COMMENT ON COLUMN index_run.leaves_indexed IS 'Leaves that passed validation (status active); 0 for an unchanged run.';
COMMENT ON COLUMN index_run.leaves_retired IS 'Contributions this run marked retired because their leaf left the tree.';
COMMENT ON COLUMN index_run.errors IS 'Findings at severity error (the rows of finding for this run).';
COMMENT ON COLUMN index_run.warnings IS 'Findings at severity warning.';

-- contributor
COMMENT ON COLUMN contributor.contributor_id IS 'The created_by login, lower-cased; joins lower(contribution.created_by) and lower(contribution_version.created_by).';
COMMENT ON COLUMN contributor.kind IS 'person (every contributor comes from a created_by login).';
COMMENT ON COLUMN contributor.login IS 'The created_by value as first written in a qna.yaml.';
COMMENT ON COLUMN contributor.display_name IS 'Display name; NULL (qna.yaml names only a login).';
COMMENT ON COLUMN contributor.public_profile IS 'https://github.com/LOGIN when the login is a valid GitHub login, else NULL.';

-- taxonomy_commit
COMMENT ON COLUMN taxonomy_commit.commit_sha IS 'Full commit id (40 hex digits); joins contribution_version.commit_sha, index_run.taxonomy_commit, run.taxonomy_commit.';
COMMENT ON COLUMN taxonomy_commit.parents IS 'Parent commit ids (empty for a root commit; two or more for a merge).';
COMMENT ON COLUMN taxonomy_commit.author IS 'Author name as git records it (git log %an; no e-mail).';
COMMENT ON COLUMN taxonomy_commit.committed_at IS 'Committer date with its offset (git log %cI).';
COMMENT ON COLUMN taxonomy_commit.subject IS 'First line of the commit message.';
COMMENT ON COLUMN taxonomy_commit.signed_off IS 'The commit message carries a Signed-off-by: trailer (DCO).';

-- contribution
COMMENT ON COLUMN contribution.contribution_id IS 'The leaf''s folder relative to the taxonomy root, e.g. knowledge/science/animals/birds/chickadee; joins contribution_version, seed_example, attribution, sample_lineage and finding on contribution_id, and takedown.subject.';
COMMENT ON COLUMN contribution.kind IS 'knowledge | compositional_skill | foundational_skill, from the top folder of the path.';
COMMENT ON COLUMN contribution.created_by IS 'created_by of the last checked version (kept from before when the file no longer parses); joins contributor.login.';
COMMENT ON COLUMN contribution.status IS 'active (valid, in the tree) | invalid (in the tree, has errors; needs --allow-errors) | retired (left the tree) | taken_down (`taxreg takedown`; stays so).';
COMMENT ON COLUMN contribution.current_version_id IS 'sha256 of the qna.yaml bytes now in the tree (64 hex digits; joins contribution_version.version_id with contribution_id); NULL when the leaf is retired or never passed validation.';
COMMENT ON COLUMN contribution.first_seen_run IS 'index_run.run_id of the run that first saw the leaf.';
COMMENT ON COLUMN contribution.last_seen_run IS 'index_run.run_id of the last run that saw the leaf in the tree.';

-- contribution_version
COMMENT ON COLUMN contribution_version.version_id IS 'sha256 of the qna.yaml bytes (64 hex digits); with contribution_id it joins seed_example, contribution_source, contribution_attribution and sample_lineage.version_id.';
COMMENT ON COLUMN contribution_version.contribution_id IS 'The leaf (taxonomy path); joins contribution.contribution_id.';
COMMENT ON COLUMN contribution_version.commit_sha IS 'The last taxonomy commit that touched the file, when the file is unchanged from that commit (joins taxonomy_commit.commit_sha); NULL for uncommitted edits. Set later once the same bytes are committed.';
COMMENT ON COLUMN contribution_version.schema_version IS 'The file''s `version` key: InstructLab schema version 1-3 (absent means 1).';
COMMENT ON COLUMN contribution_version.source_path IS 'Path of the qna.yaml relative to the taxonomy root (posix); joins finding.path and leaf_cache.source_path.';
COMMENT ON COLUMN contribution_version.kind IS 'knowledge | compositional_skill | foundational_skill, from the top folder.';
COMMENT ON COLUMN contribution_version.grounded IS 'A skill whose seed examples carry a context (grounded skill); false for knowledge.';
COMMENT ON COLUMN contribution_version.created_by IS 'The file''s created_by, as written (a GitHub login); joins contributor.login.';
COMMENT ON COLUMN contribution_version.knowledge_domain IS 'The file''s `domain` key (knowledge), as written; NULL when absent.';
COMMENT ON COLUMN contribution_version.task_description IS 'The file''s task_description, as written; NULL when absent.';
COMMENT ON COLUMN contribution_version.document_outline IS 'Knowledge: the file''s document_outline, as written; NULL otherwise.';
COMMENT ON COLUMN contribution_version.byte_size IS 'Size of the qna.yaml in bytes.';
COMMENT ON COLUMN contribution_version.word_count IS 'Words (whitespace-separated) of task_description, domain, document_outline, every context, question and answer: what rule TR403 compares with the leaf limit.';
COMMENT ON COLUMN contribution_version.document_repo IS 'Knowledge: document.repo as written (a git URL); joins source_document.repo_url. NULL for skills.';
COMMENT ON COLUMN contribution_version.document_commit IS 'Knowledge: document.commit as written (hex commit id); joins source_document.repo_commit. NULL for skills.';
COMMENT ON COLUMN contribution_version.document_patterns IS 'Knowledge: document.patterns as written (globs inside the repository, see contribution_source.pattern); the seed examples are in seed_example, so every field of the file is kept.';
COMMENT ON COLUMN contribution_version.first_seen_run IS 'index_run.run_id of the run that first indexed this version.';

-- attribution
COMMENT ON COLUMN attribution.contribution_id IS 'The leaf whose attribution.txt this is; joins contribution.contribution_id.';
COMMENT ON COLUMN attribution.attribution_sha256 IS 'sha256 of the attribution.txt bytes (64 hex digits); joins contribution_attribution.attribution_sha256 with contribution_id.';
COMMENT ON COLUMN attribution.ordinal IS 'Position of the work in the file, from 0 (works are separated by blank lines).';
COMMENT ON COLUMN attribution.title IS '"Title of work:" as written; NULL when absent.';
COMMENT ON COLUMN attribution.link IS '"Link to work:" as written (usually a URL); NULL when absent.';
COMMENT ON COLUMN attribution.revision IS '"Revision:" as written (a commit, version or date); NULL when absent.';
COMMENT ON COLUMN attribution.license_raw IS '"License of the work:" exactly as written.';
COMMENT ON COLUMN attribution.license_spdx IS 'license_raw normalized to an SPDX identifier or expression (e.g. CC-BY-SA-4.0); NULL when it is not a known SPDX license (finding TR303).';
COMMENT ON COLUMN attribution.creators IS '"Creator names:" as written; NULL when absent.';
COMMENT ON COLUMN attribution.first_seen_run IS 'index_run.run_id of the run that first stored this file''s entries.';

-- contribution_attribution
COMMENT ON COLUMN contribution_attribution.contribution_id IS 'The leaf; joins contribution.contribution_id.';
COMMENT ON COLUMN contribution_attribution.version_id IS 'The version of its qna.yaml (sha256 of the bytes); joins contribution_version.version_id with contribution_id.';
COMMENT ON COLUMN contribution_attribution.attribution_sha256 IS 'sha256 of the attribution.txt that stood beside that version; joins attribution.attribution_sha256 with contribution_id.';

-- source_document
COMMENT ON COLUMN source_document.doc_sha256 IS 'sha256 of the document file''s bytes (64 hex digits); joins contribution_source, source_chunk, sample_lineage.doc_sha256 and takedown.subject.';
COMMENT ON COLUMN source_document.repo_url IS 'The repository it comes from: document.repo of the referencing leaf, as written.';
COMMENT ON COLUMN source_document.repo_commit IS 'The pinned commit: document.commit of the referencing leaf, as written.';
COMMENT ON COLUMN source_document.path IS 'Path of the file inside the repository (posix), as matched by a document.patterns entry.';
COMMENT ON COLUMN source_document.title IS 'Markdown: the text of its first "# " heading; NULL when it has none, and for PDF.';
COMMENT ON COLUMN source_document.media_type IS 'text/markdown (.md) | application/pdf (.pdf).';
COMMENT ON COLUMN source_document.byte_size IS 'Size of the file in bytes.';
COMMENT ON COLUMN source_document.license_spdx IS 'SPDX license of the referencing leaf''s attribution.txt when all its works share one; NULL when unknown or mixed. Updated when that attribution changes.';
COMMENT ON COLUMN source_document.license_class IS 'commercial | non_commercial (an -NC license) | unspecified (license_spdx NULL).';
COMMENT ON COLUMN source_document.attribution_required IS 'The license requires attribution (all but CC0, Unlicense, 0BSD); NULL when the license is unknown.';
COMMENT ON COLUMN source_document.share_alike IS 'The license is share-alike (-SA or GPL): a release must carry it; NULL when the license is unknown.';
COMMENT ON COLUMN source_document.first_seen_run IS 'index_run.run_id of the run that first resolved this document.';

-- contribution_source
COMMENT ON COLUMN contribution_source.contribution_id IS 'The knowledge leaf; joins contribution.contribution_id.';
COMMENT ON COLUMN contribution_source.version_id IS 'The version that references the document; joins contribution_version.version_id with contribution_id.';
COMMENT ON COLUMN contribution_source.doc_sha256 IS 'The document; joins source_document.doc_sha256 (with path).';
COMMENT ON COLUMN contribution_source.pattern IS 'The document.patterns entry that matched the file, as written.';
COMMENT ON COLUMN contribution_source.path IS 'Path of the matched file inside the repository; joins source_document.path.';

-- seed_example
COMMENT ON COLUMN seed_example.seed_id IS 'sha256 of canonical JSON {answer, context, question} (64 hex digits): the same pair is the same id everywhere; joins sample_lineage.parent_id where parent_kind = ''seed''.';
COMMENT ON COLUMN seed_example.contribution_id IS 'The leaf; joins contribution.contribution_id.';
COMMENT ON COLUMN seed_example.version_id IS 'The version of the qna.yaml it was read from; joins contribution_version.version_id with contribution_id.';
COMMENT ON COLUMN seed_example.ordinal IS 'Position in the file from 0, counting every question/answer pair (a knowledge context with 3 pairs gives 3 rows).';
COMMENT ON COLUMN seed_example.context IS 'Knowledge: the context the pair is about; grounded skills: the context; NULL otherwise. As written.';
COMMENT ON COLUMN seed_example.question IS 'The question, as written.';
COMMENT ON COLUMN seed_example.answer IS 'The answer, as written.';
COMMENT ON COLUMN seed_example.line IS 'Line (from 1) where the question starts in the qna.yaml.';

-- finding
COMMENT ON COLUMN finding.run_id IS 'The index run that produced it; joins index_run.run_id.';
COMMENT ON COLUMN finding.code IS 'Rule code TRnnn (`taxreg rules` lists them: TR1xx reading, TR15x layout, TR2xx schema, TR3xx attribution and licenses, TR4xx content, TR5xx documents).';
COMMENT ON COLUMN finding.severity IS 'error | warning (the rule''s severity).';
COMMENT ON COLUMN finding.path IS 'The file or folder concerned, relative to the taxonomy root (posix): a qna.yaml (joins contribution_version.source_path), an attribution.txt or a folder.';
COMMENT ON COLUMN finding.line IS 'Line in the file, from 1 (1 when it concerns the whole file).';
COMMENT ON COLUMN finding.col IS 'Column in the line, from 1.';
COMMENT ON COLUMN finding.yaml_path IS 'Where in the YAML, e.g. .seed_examples[2].question; empty when it concerns the whole file.';
COMMENT ON COLUMN finding.message IS 'What is wrong, for the contributor; the rule''s fix is in `taxreg rules`.';
COMMENT ON COLUMN finding.contribution_id IS 'The leaf the path belongs to, else the path''s folder (joins contribution.contribution_id); NULL for a path with no folder.';

-- leaf_cache (not published)
COMMENT ON COLUMN leaf_cache.source_path IS 'The qna.yaml, relative to the taxonomy root; joins contribution_version.source_path.';
COMMENT ON COLUMN leaf_cache.mtime_ns IS 'Modification time of the qna.yaml when checked (ns since 1970): with byte_size, the stamp an unchanged file matches without being read.';
COMMENT ON COLUMN leaf_cache.byte_size IS 'Size of the qna.yaml in bytes when checked.';
COMMENT ON COLUMN leaf_cache.attribution_mtime_ns IS 'Modification time of the attribution.txt beside it (ns since 1970); NULL when there was none.';
COMMENT ON COLUMN leaf_cache.attribution_size IS 'Size of that attribution.txt in bytes; NULL when there was none.';
COMMENT ON COLUMN leaf_cache.documents_key IS 'sha256 over the path, size and mtime of every file of the document cache when checked: any change there re-checks the leaf.';
COMMENT ON COLUMN leaf_cache.rules_key IS 'The rules key the verdict was reached under (index_run.config_sha256): limits, policy, package versions and rule code. Rows of another key are ignored.';
COMMENT ON COLUMN leaf_cache.sha256 IS 'sha256 of the qna.yaml bytes checked: a touched file with the same hash keeps its verdict.';
COMMENT ON COLUMN leaf_cache.version_id IS 'The version id (= sha256) when the file passed the schema; NULL when it did not.';
COMMENT ON COLUMN leaf_cache.created_by IS 'The file''s created_by; NULL when it did not pass the schema.';
COMMENT ON COLUMN leaf_cache.findings IS 'The leaf''s own findings: JSON array of [code, severity, path, line, col, yaml_path, message].';
COMMENT ON COLUMN leaf_cache.question_keys IS 'JSON array of [key, line] per question (key: blake2b of the normalized question and context), for the cross-leaf duplicate check TR404.';

-- external_model
COMMENT ON COLUMN external_model.model_ref IS 'Name of the model: a teacher as given with --teacher-model; a local base model as NAME@first 16 hex digits of its artifact id; a Hugging Face snapshot as owner/name. Joins run.teacher_model_ref, model_artifact.base_model, run_input.input_id (input_kind external_model).';
COMMENT ON COLUMN external_model.revision IS 'Local model: its artifact id (sha256 over its files, see model_artifact.artifact_id); snapshot: the snapshot commit; NULL for a teacher.';
COMMENT ON COLUMN external_model.license_spdx IS 'The model''s license (SPDX): from its model card, Apache-2.0 for the demo model, --teacher-license for a teacher; NULL when unknown.';
COMMENT ON COLUMN external_model.output_terms IS 'Terms on what the model generates (--teacher-terms): checked by the teacher.terms release gate; NULL when unknown.';
COMMENT ON COLUMN external_model.weights_sha256 IS 'sha256 of its single .safetensors file, or the artifact id over the shard list when sharded; NULL for a teacher.';

-- run
COMMENT ON COLUMN run.run_id IS 'Random id of the run (uuid4, 32 hex digits); joins run_sample, sample_lineage, run_input, model_artifact, teacher_request and sample.first_run_id.';
COMMENT ON COLUMN run.stage IS 'generate | import (`taxreg import-sdg`) | init (demo base model) | train | export.';
COMMENT ON COLUMN run.generator IS 'What made the outputs: seed | teacher (generate), import, taxreg-demo (init), peft-lora (train), torch.onnx.dynamo (export).';
COMMENT ON COLUMN run.teacher_model_ref IS 'The teacher model (joins external_model.model_ref); NULL when no teacher was asked.';
COMMENT ON COLUMN run.params IS 'JSON object of the run''s parameters (chunking, filters, teacher settings, training hyper-parameters, export thresholds...), keys sorted.';
COMMENT ON COLUMN run.random_seed IS 'The random seed the run used (0 for runs without randomness: import, export).';
COMMENT ON COLUMN run.prompt_template_sha256 IS 'sha256 of the prompt template (generate) or of the chat template (train); NULL when none.';
COMMENT ON COLUMN run.taxonomy_commit IS 'Taxonomy HEAD when the run started (joins taxonomy_commit.commit_sha); NULL when unknown or not a git repository.';
COMMENT ON COLUMN run.builder_version IS 'Version of taxonomy-registry that ran it.';
COMMENT ON COLUMN run.started_at IS 'Wall-clock time the run started (UTC).';
COMMENT ON COLUMN run.ended_at IS 'Wall-clock time the run was recorded as ended (UTC); NULL while it runs.';
COMMENT ON COLUMN run.status IS 'succeeded | failed (running rows are never committed).';
COMMENT ON COLUMN run.stats IS 'JSON object of what the run counted: generate {produced, kept, dropped: {reason: n}, teacher: {...}}, train losses and seconds, export parity figures, or {error} for a failed run.';

-- source_chunk
COMMENT ON COLUMN source_chunk.chunk_sha256 IS 'sha256 of the chunk''s UTF-8 text (64 hex digits); joins sample_lineage.parent_id where parent_kind = ''chunk''.';
COMMENT ON COLUMN source_chunk.doc_sha256 IS 'The document it is a slice of; joins source_document.doc_sha256.';
COMMENT ON COLUMN source_chunk.chunker IS 'UNIT:MAX_SIZE of the chunking, e.g. words:300 (units: words | tokens); the same document chunked two ways has two sets of rows.';
COMMENT ON COLUMN source_chunk.ordinal IS 'Position of the chunk in the document, from 0.';
COMMENT ON COLUMN source_chunk.char_start IS 'Start offset in the document''s decoded text, in characters (Unicode code points), inclusive.';
COMMENT ON COLUMN source_chunk.char_end IS 'End offset in characters, exclusive: the chunk is text[char_start:char_end].';
COMMENT ON COLUMN source_chunk.size IS 'Length of the chunk in the chunker''s unit (words or tokens).';
COMMENT ON COLUMN source_chunk.heading IS 'The nearest markdown heading above the chunk; NULL when there is none.';

-- sample
COMMENT ON COLUMN sample.sample_id IS 'sha256 of the canonical messages JSON (64 hex digits); joins run_sample, sample_lineage, dataset_member.';
COMMENT ON COLUMN sample.messages IS 'JSON array of {"content", "role"} objects (system, user, assistant), canonical: the text sample_id hashes.';
COMMENT ON COLUMN sample.kind IS 'knowledge | compositional_skill | foundational_skill, from the leaf it came from.';
COMMENT ON COLUMN sample.n_words IS 'Words (whitespace-separated) over all messages.';
COMMENT ON COLUMN sample.kept IS 'The filters of the first run that made it kept it (run_sample has every run''s decision).';
COMMENT ON COLUMN sample.drop_reason IS 'Why it was dropped: empty_answer | too_long | near_duplicate | unparseable (teacher answer) | unplaced (import); NULL when kept.';
COMMENT ON COLUMN sample.first_run_id IS 'The run that first produced it; joins run.run_id.';

-- run_sample
COMMENT ON COLUMN run_sample.run_id IS 'The run; joins run.run_id.';
COMMENT ON COLUMN run_sample.sample_id IS 'A sample it produced; joins sample.sample_id.';
COMMENT ON COLUMN run_sample.kept IS 'This run''s filters kept it.';
COMMENT ON COLUMN run_sample.drop_reason IS 'Why this run dropped it (as sample.drop_reason); NULL when kept.';

-- sample_lineage
COMMENT ON COLUMN sample_lineage.sample_id IS 'The derived sample; joins sample.sample_id.';
COMMENT ON COLUMN sample_lineage.parent_kind IS 'What it was derived from: seed (seed_example) | chunk (source_chunk) | sample (another sample) | contribution (import: the leaf alone).';
COMMENT ON COLUMN sample_lineage.parent_id IS 'The parent''s id: seed_example.seed_id | source_chunk.chunk_sha256 | sample.sample_id | contribution.contribution_id, by parent_kind.';
COMMENT ON COLUMN sample_lineage.role IS 'What the parent was to the sample: seed_example | grounding_chunk | source_chunk | source_context | in_context_example | icl_seed_example | sdg_document (sdg_document score=S for a fuzzy match) | leaf | same_generation.';
COMMENT ON COLUMN sample_lineage.contribution_id IS 'The leaf the parent belongs to; joins contribution.contribution_id.';
COMMENT ON COLUMN sample_lineage.version_id IS 'The version of the leaf the parent was read from; joins contribution_version.version_id with contribution_id.';
COMMENT ON COLUMN sample_lineage.doc_sha256 IS 'Chunk parents: the document; joins source_document.doc_sha256. NULL otherwise.';
COMMENT ON COLUMN sample_lineage.run_id IS 'The run that recorded the edge; joins run.run_id.';
COMMENT ON COLUMN sample_lineage.method IS 'How the edge is known: generated (the generator used the parent) | leaf_node_path | file_name | record_id | seed_text_match | generated_output_match | document_text_match | fuzzy_text_match | message_text_match (import).';

-- teacher_request
COMMENT ON COLUMN teacher_request.request_sha256 IS 'sha256 of the canonical request JSON (64 hex digits): the key a resumed run looks its requests up by.';
COMMENT ON COLUMN teacher_request.run_id IS 'The run that recorded it (the last that sent it); joins run.run_id.';
COMMENT ON COLUMN teacher_request.model_ref IS 'The teacher asked; joins external_model.model_ref.';
COMMENT ON COLUMN teacher_request.request IS 'Canonical JSON body sent to the chat completions endpoint: model, messages, temperature, max_tokens, seed (not published).';
COMMENT ON COLUMN teacher_request.response IS 'JSON body the endpoint answered, as received; NULL when it failed (not published).';
COMMENT ON COLUMN teacher_request.status IS 'ok | failed (a failed row is replaced when a later run succeeds).';
COMMENT ON COLUMN teacher_request.attempts IS 'HTTP attempts made for it, over every run that sent it.';
COMMENT ON COLUMN teacher_request.error IS 'The last error of a failed request; NULL when ok (not published).';
COMMENT ON COLUMN teacher_request.finished_at IS 'Wall-clock time it was recorded (UTC).';

-- dataset
COMMENT ON COLUMN dataset.dataset_id IS 'sha256 of the file (64 hex digits, = sha256); joins dataset_member, run_input.input_id (input_kind dataset), release_artifact.ref_id (kind dataset).';
COMMENT ON COLUMN dataset.name IS 'Dataset name (--name, default "default"): the folder under the datasets folder.';
COMMENT ON COLUMN dataset.split IS 'Which split the file holds: train | test (by a hash of sample_id and --test-fraction).';
COMMENT ON COLUMN dataset.row_count IS 'Rows in the file, up-sampled copies counted.';
COMMENT ON COLUMN dataset.path IS 'Where the file was written: the dataset folder (as given, usually absolute) / SPLIT.FORMAT.';
COMMENT ON COLUMN dataset.format IS 'File format: jsonl | parquet (the same rows in both).';
COMMENT ON COLUMN dataset.sha256 IS 'sha256 of the file''s bytes (= dataset_id).';
COMMENT ON COLUMN dataset.byte_size IS 'Size of the file in bytes.';
COMMENT ON COLUMN dataset.license_expression IS 'The sources'' licenses joined with AND (sorted; UNKNOWN when a source has none); updated when a source license changes.';
COMMENT ON COLUMN dataset.params IS 'JSON object of the build options: name, test_fraction, mix ({kind: ratio}), run_id (NULL: every run).';
COMMENT ON COLUMN dataset.created_at IS 'SOURCE_DATE_EPOCH when set, else the end of the newest successful run: a date that depends only on the inputs.';

-- dataset_member
COMMENT ON COLUMN dataset_member.dataset_id IS 'The dataset file; joins dataset.dataset_id.';
COMMENT ON COLUMN dataset_member.sample_id IS 'A sample in it; joins sample.sample_id.';
COMMENT ON COLUMN dataset_member.copies IS 'How many rows of the file hold the sample (the mix up-samples kinds; at least 1).';

-- build
COMMENT ON COLUMN build.build_id IS 'Random id of the build (uuid4, 32 hex digits); joins run.build_id, dataset.build_id, release.build_id, policy_check.build_id.';
COMMENT ON COLUMN build.taxonomy_commit IS 'Taxonomy HEAD when the build started (joins taxonomy_commit.commit_sha); NULL when not a git repository.';
COMMENT ON COLUMN build.builder_version IS 'Version of taxonomy-registry that ran it.';
COMMENT ON COLUMN build.config_sha256 IS 'sha256 of the build''s options as sorted-key JSON (release, seed, train_steps, train_epochs, allow, license, builder version).';
COMMENT ON COLUMN build.source_date_epoch IS 'SOURCE_DATE_EPOCH (seconds since 1970) the build ran with; NULL when unset.';
COMMENT ON COLUMN build.started_at IS 'Wall-clock time the build started (UTC).';
COMMENT ON COLUMN build.finished_at IS 'Wall-clock time it ended (UTC); NULL while running or when killed.';
COMMENT ON COLUMN build.status IS 'running | succeeded | failed | killed (found still running by a later build).';
COMMENT ON COLUMN build.stats IS 'JSON object {stage: {status, seconds, ...its stats}} per stage.';

-- run_input
COMMENT ON COLUMN run_input.run_id IS 'The training, export or init run; joins run.run_id.';
COMMENT ON COLUMN run_input.input_kind IS 'dataset | model_artifact | external_model | contribution | document (init: the text its tokenizer was trained on).';
COMMENT ON COLUMN run_input.input_id IS 'By input_kind: dataset.dataset_id | model_artifact.artifact_id | external_model.model_ref | contribution.contribution_id | source_document.doc_sha256.';
COMMENT ON COLUMN run_input.role IS 'What the input was for: train | eval | base | adapter | tokenizer | int8 calibration | ROLE (through the adapter).';

-- model_artifact
COMMENT ON COLUMN model_artifact.artifact_id IS 'sha256 of the sorted "relpath<TAB>sha256<LF>" list of its files (64 hex digits): the same files give the same id anywhere; joins artifact_file, run_input.input_id, release_artifact.ref_id (kind model_artifact).';
COMMENT ON COLUMN model_artifact.run_id IS 'The run that wrote (or, for a base, read) it; joins run.run_id.';
COMMENT ON COLUMN model_artifact.kind IS 'base | adapter | merged | onnx | onnx_int8 | onnx_int4 | tokenizer.';
COMMENT ON COLUMN model_artifact.base_model IS 'The base model it all derives from; joins external_model.model_ref.';
COMMENT ON COLUMN model_artifact.derived_from IS 'Its parent: another artifact_id (an export''s adapter or base) or an external_model.model_ref; NULL for a demo base model.';
COMMENT ON COLUMN model_artifact.format IS 'safetensors | peft-lora | onnx.';
COMMENT ON COLUMN model_artifact.path IS 'The folder it was written to or read from, as given (usually absolute).';
COMMENT ON COLUMN model_artifact.sha256 IS 'The artifact''s hash over its file list: the same value as artifact_id.';
COMMENT ON COLUMN model_artifact.byte_size IS 'Total size of its files in bytes.';
COMMENT ON COLUMN model_artifact.metrics IS 'JSON object: an adapter''s global_step and first/last train and eval loss; an ONNX variant''s parity figures; NULL otherwise.';
COMMENT ON COLUMN model_artifact.created_at IS 'Wall-clock time the row was written (UTC).';

-- artifact_file
COMMENT ON COLUMN artifact_file.artifact_id IS 'The artifact; joins model_artifact.artifact_id.';
COMMENT ON COLUMN artifact_file.relpath IS 'Path of the file inside the artifact''s folder (posix; hidden files are not part of it).';
COMMENT ON COLUMN artifact_file.sha256 IS 'sha256 of the file''s bytes (64 hex digits).';
COMMENT ON COLUMN artifact_file.byte_size IS 'Size of the file in bytes.';

-- release
COMMENT ON COLUMN release.release_id IS 'The release version, e.g. 0.1.0; joins release_artifact, policy_check.release_id.';
COMMENT ON COLUMN release.build_id IS 'The build that cut it (joins build.build_id); NULL for `taxreg release cut` on its own.';
COMMENT ON COLUMN release.status IS 'published when cut; candidate | yanked are reserved.';
COMMENT ON COLUMN release.released_at IS 'The release''s date (manifest released_at): SOURCE_DATE_EPOCH, else the last taxonomy commit''s time, else the newest run''s end.';
COMMENT ON COLUMN release.path IS 'The release folder the cut wrote: RELEASES_DIR/VERSION, e.g. build/releases/0.1.0.';
COMMENT ON COLUMN release.license_expression IS 'The SPDX expression the release is declared under (--license, [release] license, else the union of source licenses).';
COMMENT ON COLUMN release.taxonomy_commit IS 'The taxonomy commit the manifest names (joins taxonomy_commit.commit_sha); NULL when not a git repository.';
COMMENT ON COLUMN release.manifest_sha256 IS 'sha256 of the release''s manifest.json bytes.';
COMMENT ON COLUMN release.allowed IS 'JSON array of the release gates overridden with --allow (policy_check.rule values).';

-- release_artifact
COMMENT ON COLUMN release_artifact.release_id IS 'The release; joins release.release_id.';
COMMENT ON COLUMN release_artifact.kind IS 'dataset | model_artifact | file: what ref_id names.';
COMMENT ON COLUMN release_artifact.ref_id IS 'dataset.dataset_id | model_artifact.artifact_id | the file''s sha256, by kind.';
COMMENT ON COLUMN release_artifact.relpath IS 'Path of the file inside the release folder (posix), as in SHA256SUMS.';
COMMENT ON COLUMN release_artifact.sha256 IS 'sha256 of the file''s bytes, as in SHA256SUMS.';

-- policy_check
COMMENT ON COLUMN policy_check.build_id IS 'The build that ran the gates (joins build.build_id); NULL for a cut on its own.';
COMMENT ON COLUMN policy_check.release_id IS 'The version being cut (joins release.release_id once the cut succeeds; a refused cut''s version may have no release row).';
COMMENT ON COLUMN policy_check.rule IS 'The gate: validation.errors | lineage.orphans | license.known | license.allowed | license.compatible | teacher.terms | parity.fp32 | takedown.excluded.';
COMMENT ON COLUMN policy_check.subject IS 'What failed: a document sha256, a contribution path, a sample id, a teacher model_ref or model/onnx; * for a passing check over everything.';
COMMENT ON COLUMN policy_check.severity IS 'error (blocks the release unless overridden) | warning | info.';
COMMENT ON COLUMN policy_check.passed IS 'The check passed for this subject.';
COMMENT ON COLUMN policy_check.overridden IS 'Failed, but its rule was named with --allow (also in release.allowed and the manifest).';
COMMENT ON COLUMN policy_check.details IS 'JSON object of the evidence: license, reason, samples, contributions, what was checked...';
COMMENT ON COLUMN policy_check.checked_at IS 'Wall-clock time of the check (UTC).';

-- takedown
COMMENT ON COLUMN takedown.subject IS 'What was taken down: a document''s sha256 (joins source_document.doc_sha256) or a contribution path (joins contribution.contribution_id).';
COMMENT ON COLUMN takedown.subject_kind IS 'What subject is: document | contribution.';
COMMENT ON COLUMN takedown.reason IS 'Why (--reason), as given.';
COMMENT ON COLUMN takedown.requested_by IS 'Who asked (--by); NULL when not given.';
COMMENT ON COLUMN takedown.taken_down_at IS 'Wall-clock time it was recorded (UTC).';

-- Views: each column says where it comes from.
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

COMMENT ON COLUMN v_orphan_samples.sample_id IS 'sample.sample_id of a kept sample with no sample_lineage row.';
COMMENT ON COLUMN v_orphan_samples.messages IS 'sample.messages: JSON array of {"content", "role"}.';
COMMENT ON COLUMN v_orphan_samples.kind IS 'sample.kind: knowledge | compositional_skill | foundational_skill.';
COMMENT ON COLUMN v_orphan_samples.n_words IS 'sample.n_words: words over all messages.';
COMMENT ON COLUMN v_orphan_samples.kept IS 'sample.kept (always true here).';
COMMENT ON COLUMN v_orphan_samples.drop_reason IS 'sample.drop_reason (always NULL here: the sample is kept).';
COMMENT ON COLUMN v_orphan_samples.first_run_id IS 'sample.first_run_id: the run that made it; joins run.run_id.';

COMMENT ON COLUMN v_license_summary.license IS 'SPDX license of a source (document, or attribution.txt for seed edges); UNKNOWN when none is known.';
COMMENT ON COLUMN v_license_summary.samples IS 'Kept samples deriving from a source under that license (a sample counts once per license).';

COMMENT ON COLUMN v_release_samples.release_id IS 'The release; joins release.release_id.';
COMMENT ON COLUMN v_release_samples.sample_id IS 'A sample in one of its dataset files; joins sample.sample_id.';

COMMENT ON COLUMN v_sample_license.sample_id IS 'The sample; joins sample.sample_id.';
COMMENT ON COLUMN v_sample_license.source_kind IS 'chunk (the license of a document) | seed (the license of the leaf''s attribution.txt).';
COMMENT ON COLUMN v_sample_license.license_spdx IS 'SPDX license of that source; NULL = unknown.';
COMMENT ON COLUMN v_sample_license.license_class IS 'commercial | non_commercial | unspecified (unknown license).';
COMMENT ON COLUMN v_sample_license.doc_sha256 IS 'Chunk sources: the document; joins source_document.doc_sha256. NULL for seeds.';
COMMENT ON COLUMN v_sample_license.contribution_id IS 'The leaf of the edge; joins contribution.contribution_id.';

COMMENT ON COLUMN v_release_license_summary.release_id IS 'The release; joins release.release_id.';
COMMENT ON COLUMN v_release_license_summary.license IS 'SPDX license of a source of its samples; UNKNOWN when none is known.';
COMMENT ON COLUMN v_release_license_summary.license_class IS 'commercial | non_commercial | unspecified.';
COMMENT ON COLUMN v_release_license_summary.samples IS 'Samples of the release deriving from a source under that license and class.';
COMMENT ON COLUMN v_release_license_summary.documents IS 'Distinct documents among those sources.';
COMMENT ON COLUMN v_release_license_summary.contributions IS 'Distinct contributions among those sources.';

COMMENT ON COLUMN v_release_contributors.release_id IS 'The release; joins release.release_id.';
COMMENT ON COLUMN v_release_contributors.contributor IS 'A contributor login (contribution_version.created_by; joins contributor.login).';
COMMENT ON COLUMN v_release_contributors.contributions IS 'That contributor''s contributions the release''s samples derive from.';
COMMENT ON COLUMN v_release_contributors.samples IS 'The release''s samples deriving from them.';

COMMENT ON COLUMN v_release_manifest.release_id IS 'release.release_id: the release version, e.g. 0.1.0.';
COMMENT ON COLUMN v_release_manifest.status IS 'release.status: published when cut.';
COMMENT ON COLUMN v_release_manifest.released_at IS 'release.released_at: the release''s date.';
COMMENT ON COLUMN v_release_manifest.license_expression IS 'release.license_expression: the declared license.';
COMMENT ON COLUMN v_release_manifest.taxonomy_commit IS 'release.taxonomy_commit: the taxonomy commit it was cut from.';
COMMENT ON COLUMN v_release_manifest.manifest_sha256 IS 'release.manifest_sha256: sha256 of manifest.json.';
COMMENT ON COLUMN v_release_manifest.kind IS 'release_artifact.kind: dataset | model_artifact | file.';
COMMENT ON COLUMN v_release_manifest.ref_id IS 'release_artifact.ref_id: dataset_id | artifact_id | the file''s sha256.';
COMMENT ON COLUMN v_release_manifest.relpath IS 'release_artifact.relpath: the file inside the release folder.';
COMMENT ON COLUMN v_release_manifest.sha256 IS 'release_artifact.sha256: sha256 of the file.';

COMMENT ON COLUMN v_teacher_terms.model_ref IS 'The teacher; joins external_model.model_ref and run.teacher_model_ref.';
COMMENT ON COLUMN v_teacher_terms.revision IS 'external_model.revision (NULL for teachers).';
COMMENT ON COLUMN v_teacher_terms.license_spdx IS 'external_model.license_spdx: the model''s license; NULL = unknown.';
COMMENT ON COLUMN v_teacher_terms.output_terms IS 'external_model.output_terms: the terms on its outputs; NULL = unknown.';
COMMENT ON COLUMN v_teacher_terms.samples IS 'Samples kept by the runs that asked it.';
COMMENT ON COLUMN v_teacher_terms.runs IS 'Runs that asked it.';

COMMENT ON COLUMN v_release_checks.build_id IS 'policy_check.build_id: the build that ran the gates.';
COMMENT ON COLUMN v_release_checks.release_id IS 'policy_check.release_id: the release (it exists).';
COMMENT ON COLUMN v_release_checks.rule IS 'policy_check.rule: the gate, e.g. license.known.';
COMMENT ON COLUMN v_release_checks.subject IS 'policy_check.subject: what failed, or * for a passing check.';
COMMENT ON COLUMN v_release_checks.severity IS 'policy_check.severity: error | warning | info.';
COMMENT ON COLUMN v_release_checks.passed IS 'policy_check.passed: the check passed for this subject.';
COMMENT ON COLUMN v_release_checks.overridden IS 'policy_check.overridden: failed but allowed with --allow.';
COMMENT ON COLUMN v_release_checks.details IS 'policy_check.details: JSON object of the evidence.';
COMMENT ON COLUMN v_release_checks.checked_at IS 'policy_check.checked_at: wall-clock time of the check (UTC).';
COMMENT ON COLUMN v_release_checks.attempt IS 'policy_check.attempt: the last attempt, the cut that made the release.';

COMMENT ON MACRO TABLE takedown_impact IS 'takedown_impact(subject): every sample, run, dataset, model and release that depends on a subject (a document sha256, a contribution path, a version id, or a seed or chunk id). Columns: what (sample | run | dataset | model | release), id, detail.';
