"""`python -m recops_cli`: the same command line as the `recops` script."""

from recops_cli.main import main

main()
