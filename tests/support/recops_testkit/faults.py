"""Faults a real API server shows its clients, injected one test at a time.

A test arms a fault (``api.faults.conflict("trainingruns", subresource="status")``); the
next matching request gets it instead of its answer, and ``fault.hits`` says whether it
fired. Request faults answer with the Status a real server sends (409 Conflict, 429 and
503 with ``Retry-After``) or hang up without an answer (``dropped``: before the server
acted on the request, or after, when the write is stored but the client never learns it);
watch faults hit the next event of an open watch: ``expire``
sends the ERROR event with 410 Gone a server sends when a watch's resourceVersion is too
old (the event is lost; the client must relist), ``drop`` closes the connection under it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import aiohttp.web

from recops_testkit.admission import Obj

Verb = Literal["create", "patch", "get", "list"]
WatchFault = Literal["expire", "drop"]
# When a dropped request's connection closes: before the server acts on it, or after.
Drop = Literal["unapplied", "applied"]
_REASONS = {409: "Conflict", 429: "TooManyRequests", 503: "ServiceUnavailable"}
_MESSAGES = {
    409: "Operation cannot be fulfilled: the object has been modified; please apply your "
    "changes to the latest version and try again",
    429: "Too many requests, please try again later.",
    503: "The server is currently unable to handle the request.",
}


@dataclass
class Fault:
    """One armed fault: what it matches, what it answers, how often it fired."""

    plural: str
    verb: Verb | Literal["watch"]
    subresource: str | None = None
    status: int = 0
    retry_after: int | None = None
    watch: WatchFault | None = None
    drop: Drop | None = None
    times: int = 1
    hits: int = 0

    @property
    def spent(self) -> bool:
        return self.hits >= self.times

    def matches(self, plural: str | None, verb: str, subresource: str | None) -> bool:
        return (
            not self.spent
            and plural == self.plural
            and verb == self.verb
            and subresource == self.subresource
        )

    def status_body(self) -> Obj:
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": self.status,
            "reason": _REASONS[self.status],
            "message": _MESSAGES[self.status],
            "details": {},
        }
        if self.retry_after is not None:
            body["details"]["retryAfterSeconds"] = self.retry_after
        return body

    def response(self) -> aiohttp.web.Response:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        return aiohttp.web.json_response(self.status_body(), status=self.status, headers=headers)


@dataclass
class Faults:
    """The faults armed on one emulated API server."""

    armed: list[Fault] = field(default_factory=list)

    def conflict(self, plural: str, *, subresource: str | None = None, times: int = 1) -> Fault:
        """409 Conflict on the next ``times`` patches of ``plural`` (or of its subresource)."""
        return self._arm(Fault(plural, "patch", subresource, status=409, times=times))

    def unavailable(
        self,
        plural: str,
        verb: Verb,
        *,
        status: Literal[429, 503] = 503,
        retry_after: int = 1,
        subresource: str | None = None,
        times: int = 1,
    ) -> Fault:
        """429 Too Many Requests or 503 Service Unavailable, with ``Retry-After``."""
        fault = Fault(plural, verb, subresource, status=status, retry_after=retry_after)
        fault.times = times
        return self._arm(fault)

    def dropped(
        self,
        plural: str,
        verb: Verb,
        *,
        applied: bool = False,
        subresource: str | None = None,
        times: int = 1,
    ) -> Fault:
        """Close the connection under the next ``times`` requests of ``plural`` (or of its
        subresource): before the server acts on one, or (``applied``) after it stored it."""
        fault = Fault(plural, verb, subresource, drop="applied" if applied else "unapplied")
        fault.times = times
        return self._arm(fault)

    def on_watch(self, plural: str, what: WatchFault, *, times: int = 1) -> Fault:
        """Expire (410 Gone) or drop the next ``times`` watch streams of ``plural`` at
        their next event."""
        return self._arm(Fault(plural, "watch", watch=what, times=times))

    def take(self, plural: str | None, verb: str, subresource: str | None) -> Fault | None:
        """The fault this request gets (counted as fired), if any."""
        for fault in self.armed:
            if fault.matches(plural, verb, subresource):
                fault.hits += 1
                return fault
        return None

    def _arm(self, fault: Fault) -> Fault:
        self.armed.append(fault)
        return fault


def gone_event() -> Obj:
    """The ERROR event a server sends when a watch's resourceVersion was compacted away."""
    return {
        "type": "ERROR",
        "object": {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": 410,
            "reason": "Expired",
            "message": "too old resource version",
        },
    }
