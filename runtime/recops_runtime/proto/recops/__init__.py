"""Generated code: do not edit; regenerate with `python -m recops_runtime.protogen`."""
