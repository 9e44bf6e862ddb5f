"""Pure decisions: what to do next, from typed spec and observed state (no I/O)."""
