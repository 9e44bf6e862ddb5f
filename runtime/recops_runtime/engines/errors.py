"""Errors an engine build or load raises; each message names what is wrong and the fix."""

from __future__ import annotations


class EngineError(Exception):
    """Base class: the engine cannot be built or loaded as asked."""


class UnknownTargetError(EngineError, ValueError):
    """The target name is not one recops can build."""


class CorruptEngineError(EngineError):
    """The engine folder is incomplete, altered, or does not match its manifest."""


class MissingToolkitError(EngineError, RuntimeError):
    """The target needs a toolkit or a device that this machine lacks (CUDA, TensorRT...)."""


class ParityError(EngineError):
    """The built engine's scores drift from the cpu-torch reference beyond the target's limit."""
