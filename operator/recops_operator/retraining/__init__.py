"""Automatic retraining: the live signals it reads and the decisions it makes."""
