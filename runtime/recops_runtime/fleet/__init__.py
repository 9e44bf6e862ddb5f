"""Several server processes behind one set of ports.

The supervisor, the admin fan-out, the shared state without Redis, the merged metrics and
the worker process entry.
"""
