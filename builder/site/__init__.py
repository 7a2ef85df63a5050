"""The public site: pages generated from the catalog, the audit database and the SQL console."""
