"""Thin Kopf handlers: fetch, call the pure decisions and renderers, write."""
