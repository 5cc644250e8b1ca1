"""Fault injection for crash tests: make this process stall or die at a named point.

``BOT_FAULT`` (read once, at start) names a point and what happens there, e.g.
``delivery.before_finish:sleep=0.5:exit`` — wait half a second, then end the process at once
(``os._exit``: no cleanup, no flush, as a kill -9 would) — or ``delivery.before_finish:sleep=3``
(a handler that is only slow); ``skip=N`` lets the first N arrivals pass (a conversation's earlier
messages). Points are reached by :func:`reached`; with ``BOT_FAULT`` unset
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
        else:
            raise ValueError(f"BOT_FAULT: unknown action {action!r} (use skip=N, sleep=SECONDS or exit)")
    return fault


_FAULT = parse(os.environ.get("BOT_FAULT", ""))


async def reached(point: str) -> None:
    """Stall or die here if ``BOT_FAULT`` names this point."""
    fault = _FAULT
    if fault is None or fault.point != point:
        return
    if fault.skip > 0:
        fault.skip -= 1
        return
    log.warning("fault injected at %s: %s", point, fault)
    if fault.sleep:
        await asyncio.sleep(fault.sleep)
    if fault.exit:
        os._exit(EXIT_CODE)
