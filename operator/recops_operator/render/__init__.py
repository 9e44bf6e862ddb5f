"""Pure renderers: Kubernetes objects as functions of typed inputs (no I/O)."""
