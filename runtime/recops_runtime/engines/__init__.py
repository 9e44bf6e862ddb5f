"""Engines: one builder and one loader per deployment target.

Importing this package imports no engine toolkit (torch, onnxruntime, openvino, nncf,
tensorrt): each is imported by the loader or builder of the target that needs it.
"""

from recops_runtime.engines.base import Engine
from recops_runtime.engines.build import BuildOptions, build_engine
from recops_runtime.engines.errors import (
    CorruptEngineError,
    EngineError,
    MissingToolkitError,
    ParityError,
    UnknownTargetError,
)
from recops_runtime.engines.load import load_engine
from recops_runtime.engines.targets import TARGETS, get_target
from recops_runtime.engines.toolkits import ResolvedTarget, resolve_target

__all__ = [
    "TARGETS",
    "BuildOptions",
    "CorruptEngineError",
    "Engine",
    "EngineError",
    "MissingToolkitError",
    "ParityError",
    "ResolvedTarget",
    "UnknownTargetError",
    "build_engine",
    "get_target",
    "load_engine",
    "resolve_target",
]
