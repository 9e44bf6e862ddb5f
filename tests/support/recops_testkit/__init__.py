"""The harness shared by the test tiers and the benchmarks; not part of any shipped package.

``tests/support`` is its import root (pytest's ``pythonpath``, mypy's ``mypy_path``), the way
``contracts/`` is the root of ``recops_contracts``: a unique name, so no module of the harness
can shadow or be shadowed by an installed one.
"""
