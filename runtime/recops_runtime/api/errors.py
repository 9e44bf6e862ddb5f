"""Errors that carry their status, and the one place that maps them to gRPC and HTTP.

The data plane raises :class:`ServiceError` with a :class:`Status`; the gRPC servicer and
the HTTP adapter translate with :func:`grpc_status` and :func:`http_status`. Anything
else escaping the data plane is a bug and maps to INTERNAL.
"""

from __future__ import annotations

import enum


class Status(enum.Enum):
    """The subset of gRPC status codes the service answers with (names as in gRPC)."""

    OK = "OK"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"
    CANCELLED = "CANCELLED"
    INTERNAL = "INTERNAL"


_HTTP = {
    Status.OK: 200,
    Status.INVALID_ARGUMENT: 400,
    Status.NOT_FOUND: 404,
    Status.FAILED_PRECONDITION: 422,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.DEADLINE_EXCEEDED: 504,
    Status.UNAVAILABLE: 503,
    Status.CANCELLED: 499,
    Status.INTERNAL: 500,
}


class ServiceError(Exception):
    """A failure the caller can act on: a status and a message naming the field or cause."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def invalid(field: str, problem: str) -> ServiceError:
    return ServiceError(Status.INVALID_ARGUMENT, f"{field}: {problem}")


def http_status(status: Status) -> int:
    return _HTTP[status]


def grpc_status(status: Status) -> object:
    """The ``grpc.StatusCode`` member of the same name (imported lazily: grpc is heavy)."""
    import grpc

    return grpc.StatusCode[status.value]
