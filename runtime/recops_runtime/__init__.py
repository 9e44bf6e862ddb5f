"""The recops runtime: gRPC service, engines per target, batching, metrics, feedback."""
