"""What stalls a serving process's event loop: full garbage collections kept short, and the
loop's lag and the collector's pauses measured for ``/metrics``.

Every request in flight waits while the loop's thread is busy elsewhere, so a pause of the whole
loop puts its length on each of them: on the realistic mix (32 connections) a stall of 30 ms is
30 ms more for 32 requests, a third of a percent of 10,000 messages each time.

Full collections. ``gc.freeze()`` at start-up puts what start-up loaded (~450,000 objects:
language models, jieba's dictionary, modules) out of the cyclic collector's reach. What the first
requests create and keep — SQLAlchemy's compiled statements, their parameters and result metadata,
the flows' caches: ~35,000 objects on the mix, reached after ~2,000 messages and then flat — still
landed in the oldest generation, and every full collection (about 7 per 10,000 messages) walked
all of it while the loop waited: 29-43 ms of CPU each on a loaded machine, the largest stalls
after start-up's. :func:`freeze_survivors` freezes what survives each of the first few full
collections, at the end of that collection (the young generations are empty then and the garbage
just freed), so the later ones walk only what was kept since. The cost: an object frozen while
alive that later becomes garbage in a reference cycle is never collected (freed by reference
counting it still is); only what is alive at those few moments can be, so it is bounded — the
requests in flight then (a few thousand objects each time) and any cache entry evicted later.

Loop lag: a timer every :data:`LAG_EVERY` seconds notes how late it ran (a callback that ran long,
a collection, the process waiting for a core); as a histogram, with the collector's pauses by
generation.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from prometheus_client import Histogram

FREEZE_COLLECTIONS = 8  # full collections whose survivors are frozen (warm-up: ~2,000 messages take 3-5)
LAG_EVERY = 0.25  # seconds between samples of the loop's lag

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LOOP_LAG = Histogram(
    "bot_event_loop_lag_seconds",
    f"How late a timer due every {LAG_EVERY} s ran on the event loop (every request in flight waits as long)",
    buckets=_BUCKETS,
)
GC_PAUSE = Histogram(
    "bot_gc_pause_seconds", "Pauses of Python's cyclic garbage collector", ["generation"], buckets=_BUCKETS
)


class SurvivorFreezer:
    """A ``gc.callbacks`` entry: at the end of each of the first ``count`` full collections,
    ``gc.freeze()``. ``frozen`` counts the freezes done; the callback stays registered (a call
    per collection that returns at once) rather than be removed while the collector iterates."""

    def __init__(self, count: int = FREEZE_COLLECTIONS) -> None:
        self.left = count
        self.frozen = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if self.left > 0 and phase == "stop" and info.get("generation") == 2:
            self.left -= 1
            self.frozen += 1
            gc.freeze()


class PauseTimer:
    """A ``gc.callbacks`` entry that observes each collection's duration in :data:`GC_PAUSE`."""

    def __init__(self) -> None:
        self._started = 0.0
        self._children = [GC_PAUSE.labels(str(g)) for g in range(3)]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._children[min(int(info.get("generation", 0)), 2)].observe(time.perf_counter() - self._started)


def freeze_survivors(count: int = FREEZE_COLLECTIONS) -> SurvivorFreezer:
    """From now on, freeze the survivors of the next ``count`` full collections (see the module)."""
    freezer = SurvivorFreezer(count)
    gc.callbacks.append(freezer)
    return freezer


def time_collections() -> PauseTimer:
    timer = PauseTimer()
    gc.callbacks.append(timer)
    return timer


_installed: tuple[SurvivorFreezer, PauseTimer] | None = None


def install() -> tuple[SurvivorFreezer, PauseTimer]:
    """:func:`freeze_survivors` and :func:`time_collections`, once per process: a process that
    serves again (tests start servers in one process) keeps the first pair instead of adding
    callbacks that would count every collection twice."""
    global _installed
    if _installed is None:
        _installed = (freeze_survivors(), time_collections())
    return _installed


async def watch_lag(stop: asyncio.Event, every: float = LAG_EVERY) -> None:
    """Until ``stop``: sleep ``every`` seconds and observe how much later than that the loop woke."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + every
        await asyncio.sleep(every)
        LOOP_LAG.observe(max(0.0, loop.time() - due))
