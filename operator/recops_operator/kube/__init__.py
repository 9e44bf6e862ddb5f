"""A small typed Kubernetes API client and the resources recops touches."""
