"""The service's protocol buffers and generated stubs (`python -m recops_runtime.protogen`)."""
