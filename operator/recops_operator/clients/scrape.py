"""Client of the runtimes' own ``/metrics`` endpoints: their exposition text, read directly.

The one-machine ``recops rollout`` measures with it when there is no Prometheus. What the
counters mean is the scrape provider's (``analysis_providers/scrape.py``); this module only
fetches the texts, or says why it could not.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx


class ScrapeError(Exception):
    """A ``/metrics`` endpoint did not answer, or answered with an error status."""


class ScrapeClient:
    """The ``/metrics`` URLs of one runtime (one per process), read together."""

    def __init__(self, urls: Sequence[str], timeout: float = 5.0) -> None:
        if not urls:
            raise ValueError("give at least one runtime /metrics URL")
        self.urls = list(urls)
        self.timeout = timeout

    async def expositions(self) -> list[str]:
        """One exposition text per URL, in order; ``ScrapeError`` when any fails."""
        # A connection per reading: readings are seconds apart, and nothing to close after.
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                texts = []
                for url in self.urls:
                    resp = await client.get(url)
                    resp.raise_for_status()
                    texts.append(resp.text)
        except httpx.HTTPError as exc:
            raise ScrapeError(f"runtime metrics at {', '.join(self.urls)}: {exc!r}") from exc
        return texts
