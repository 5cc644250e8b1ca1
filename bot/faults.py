"""Fault injection for crash tests: make this process stall or die at a named point.

``BOT_FAULT`` (read once, at start) names a point and what happens there, e.g.
``delivery.before_finish:sleep=0.5:exit`` — wait half a second, then end the process at once
(``os._exit``: no cleanup, no flush, as a kill -9 would) — or ``delivery.before_finish:sleep=3``
(a handler that is only slow); ``skip=N`` lets the first N arrivals pass (a conversation's earlier
messages); ``wait=N`` holds each arrival until N have arrived (several handlers caught at the point
together, however slow the machine; at most a minute) before the sleep and the exit. Points are reached by :func:`reached`; with ``BOT_FAULT`` unset
(always, outside tests) a point costs one comparison.

Points:
- ``delivery.before_finish``: the handler has run and committed its own effects (a ticket, a
  redemption, a booking) but its reply is not stored yet; the request may have been answered
  ``success`` already (its reply budget ran out).
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass

log = logging.getLogger("bot.faults")

EXIT_CODE = 70  # what a test sees as "the process died at the fault"


@dataclass
class Fault:
    point: str
    sleep: float = 0.0
    exit: bool = False
    skip: int = 0
    wait: int = 0


def parse(spec: str) -> Fault | None:
    """``point[:skip=N][:sleep=SECONDS][:exit]``; empty → None. Raises ValueError naming what is wrong."""
    spec = spec.strip()
    if not spec:
        return None
    point, *actions = spec.split(":")
    fault = Fault(point.strip())
    for action in actions:
        name, _, value = action.partition("=")
        if name == "exit" and not value:
            fault.exit = True
        elif name == "sleep" and value:
            fault.sleep = float(value)
        elif name == "skip" and value.isdigit():
            fault.skip = int(value)
        elif name == "wait" and value.isdigit():
            fault.wait = int(value)
        else:
            raise ValueError(f"BOT_FAULT: unknown action {action!r} (use skip=N, wait=N, sleep=SECONDS or exit)")
    return fault


_FAULT = parse(os.environ.get("BOT_FAULT", ""))
WAIT_AT_MOST = 60.0  # seconds an arrival is held for the others (wait=N)
_arrivals = 0
_all_arrived: asyncio.Event | None = None


async def reached(point: str) -> None:
    """Stall or die here if ``BOT_FAULT`` names this point."""
    fault = _FAULT
    if fault is None or fault.point != point:
        return
    if fault.skip > 0:
        fault.skip -= 1
        return
    log.warning("fault injected at %s: %s", point, fault)
    if fault.wait:
        await _gather(fault.wait)
    if fault.sleep:
        await asyncio.sleep(fault.sleep)
    if fault.exit:
        os._exit(EXIT_CODE)


async def _gather(count: int) -> None:
    global _arrivals, _all_arrived
    if _all_arrived is None:
        _all_arrived = asyncio.Event()
    _arrivals += 1
    if _arrivals >= count:
        _all_arrived.set()
    try:
        await asyncio.wait_for(_all_arrived.wait(), WAIT_AT_MOST)
    except TimeoutError:
        log.warning("fault: %d of %d arrivals after %.0f s; going on", _arrivals, count, WAIT_AT_MOST)
