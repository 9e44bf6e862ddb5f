"""What recops's processes agree on, defined once.

The operator renders training configs the trainer parses, reads the MLflow tags and metrics
the trainer writes, and queries the Prometheus series the runtime exports; the runtime writes
the feedback log the trainer reads. Each of those contracts is a module here, and every
side imports it, so a changed field, default, bound or name changes on both sides at once.

This package imports only pydantic (an import-linter contract keeps it so): the operator
image, without torch or the engines, imports it as readily as the trainer.
"""
