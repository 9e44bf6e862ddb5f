"""Engines: one builder and one loader per deployment target."""
