"""What a handler does with the API server's passing failures: try again in a second.

Kopf retries any other exception after its default backoff, a minute: too slow for a
write conflict (the object just changed: read it again and redo), for throttling or a
server that is briefly unavailable (429, 500, 503, 504), and for a connection that
dropped or a server that restarted. A reconcile is idempotent and resumes from what it
stored, so trying it again soon is always safe.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
import kopf

from recops_operator.clients.kubernetes import ConflictError, KubeError

PASSING = {429, 500, 502, 503, 504}
RETRY_SECONDS = 1.0


@contextlib.contextmanager
def soon_on_passing_failures() -> Iterator[None]:
    """Turn a passing API failure inside the block into a retry after RETRY_SECONDS."""
    try:
        yield
    except ConflictError as exc:
        raise kopf.TemporaryError(f"written meanwhile, retrying: {exc}", RETRY_SECONDS) from exc
    except KubeError as exc:
        if exc.status not in PASSING:
            raise
        raise kopf.TemporaryError(f"API server busy, retrying: {exc}", RETRY_SECONDS) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise kopf.TemporaryError(
            f"API server unreachable, retrying: {exc!r}", RETRY_SECONDS
        ) from exc
