"""`python -m builder.cli`: the same as the `taxreg` script."""

from builder.cli import main

main()
