"""Pipeline stages: each one reads what is upstream of it and writes only its own outputs and rows."""
