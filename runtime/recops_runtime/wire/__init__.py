"""Thin adapters: gRPC and JSON/HTTP messages converted to and from the request path's."""
