"""Taxonomy Registry builder: the stages and the `taxreg` command line."""
