-- v006: what an index run read of a git taxonomy besides HEAD: its uncommitted changes and a digest of the tree,
-- so that a release cut from edits nobody committed says so (issue 16.1).
ALTER TABLE index_run ADD COLUMN dirty_paths VARCHAR[];
ALTER TABLE index_run ADD COLUMN tree_sha256 VARCHAR;
COMMENT ON COLUMN index_run.dirty_paths IS 'Paths (relative to the taxonomy root) that differed from taxonomy_commit when the run read the tree: modified, deleted or untracked files; empty for a clean tree, NULL when the taxonomy is not a git repository (or the row predates catalog schema 6). A release cut from a run with any is refused unless --allow taxonomy.dirty.';
COMMENT ON COLUMN index_run.tree_sha256 IS 'sha256 of one "<git blob id> <path>" line per file of the working tree under the taxonomy root, sorted by path: for a clean tree that of taxonomy_commit, for a dirty one that of the commit its changes would make. NULL outside git.';
