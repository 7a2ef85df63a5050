"""Releases as data: the manifest, SHA256SUMS, verification and diffs. Pure: reads files, never prints."""
