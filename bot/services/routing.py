"""The complaint routing classifier as the service uses it: loaded once per data dir, in a thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

from intents.routing import Route, Router

log = logging.getLogger(__name__)
_routers: dict[str, Router] = {}
_lock = threading.Lock()


def _load(data_dir: Path | None) -> Router:
    key = str(data_dir or "")
    with _lock:
        if key not in _routers:
            _routers[key] = Router.load(data_dir)
        return _routers[key]


async def preload(data_dir: Path | None) -> None:
    """Load the router for ``data_dir`` now (a server at start-up) instead of at the first report.
    A router that cannot be loaded is logged and left to the first report, as before."""
    if str(data_dir or "") not in _routers:
        try:
            await asyncio.to_thread(_load, data_dir)
        except Exception as exc:
            log.warning("complaint router not loaded at start-up: %s", type(exc).__name__)


async def route(data_dir: Path | None, text: str) -> Route:
    router = _routers.get(str(data_dir or ""))  # loaded: no thread hop just to look it up
    if router is None:
        router = await asyncio.to_thread(_load, data_dir)
    # Routing a report takes well under 0.1 ms of CPU, less than a hop to a thread and back (as
    # the intent classification, it runs on the event loop); only loading the model is slow.
    return router.route(text)
