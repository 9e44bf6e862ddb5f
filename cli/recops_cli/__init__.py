"""The `recops` command line: the composition root of the operator, runtime and trainer."""
