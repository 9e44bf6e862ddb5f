"""Automatic retraining: when to train again (``decision.py``, pure) and the live signals
it reads from Prometheus (``signals.py``)."""
