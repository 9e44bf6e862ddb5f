"""`recops serve`'s entry: one server process, or a fleet of them behind one set of ports.

Deciding here, above both, keeps the single server unaware of the fleet that composes it.
"""

from __future__ import annotations

from recops_runtime.fleet.supervisor import supervise_until_signalled
from recops_runtime.registry.version_registry import runs_on_gpu
from recops_runtime.serve_settings import ServeSettings
from recops_runtime.server import serve_alone_until_signalled


async def serve_until_signalled(settings: ServeSettings, ready_line: bool = True) -> int:
    """Serves until SIGTERM or SIGINT, then drains; the exit status (0: a clean drain)."""
    processes = resolved_processes(settings)
    if processes > 1:
        return await supervise_until_signalled(settings, processes, ready_line)
    return await serve_alone_until_signalled(settings, ready_line)


def resolved_processes(settings: ServeSettings) -> int:
    """``--processes``, or one per usable CPU; 1 when an engine runs on a GPU (the device,
    not the interpreter, is the shared resource there)."""
    if settings.processes is not None:
        return settings.processes
    if any(runs_on_gpu(path) for path in settings.engines.values()):
        return 1
    return settings.resolved_processes()
