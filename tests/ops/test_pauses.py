"""What stalls a serving process's event loop (bot/pauses.py): the survivors of the first full
collections are frozen, collections and the loop's lag are measured; the complaint router can be
loaded at start-up."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import weakref
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from bot import pauses
from bot.services import routing


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_survivors_of_the_first_full_collections_are_frozen() -> None:
    freezer = pauses.freeze_survivors(2)
    try:
        kept = [[i] for i in range(100)]
        garbage = Node()
        gone = weakref.ref(garbage)
        del garbage
        before = gc.get_freeze_count()
        gc.collect(0)
        gc.collect(1)
        assert gc.get_freeze_count() == before  # young collections freeze nothing
        gc.collect()
        # Frozen at the end of the full collection: the garbage freed first, the survivors out
        # of every later collection's reach.
        assert gone() is None
        assert gc.get_freeze_count() >= before + len(kept)
        assert not any(o is kept for o in gc.get_objects())
        gc.collect()
        assert freezer.frozen == 2
        later = [[1]]
        gc.collect()  # the third: nothing frozen any more
        assert freezer.frozen == 2
        assert any(o is later for o in gc.get_objects())
    finally:
        gc.callbacks.remove(freezer)
        gc.unfreeze()


def test_collections_are_timed_by_generation() -> None:
    # Alone: timers a server started in this process left registered would count too, and so would
    # an automatic collection between the samples.
    others = [cb for cb in gc.callbacks if isinstance(cb, pauses.PauseTimer)]
    for cb in others:
        gc.callbacks.remove(cb)
    automatic = gc.isenabled()
    gc.disable()
    timer = pauses.time_collections()
    try:
        full, young = sample("bot_gc_pause_seconds_count", generation="2"), sample(
            "bot_gc_pause_seconds_count", generation="0"
        )
        gc.collect()
        gc.collect(0)
        assert sample("bot_gc_pause_seconds_count", generation="2") == full + 1
        assert sample("bot_gc_pause_seconds_count", generation="0") == young + 1
    finally:
        gc.callbacks.remove(timer)
        gc.callbacks.extend(others)
        if automatic:
            gc.enable()


def test_serving_again_in_one_process_adds_no_second_timer() -> None:
    first = pauses.install()
    callbacks = len(gc.callbacks)
    assert pauses.install() is first
    assert len(gc.callbacks) == callbacks


async def test_the_loops_lag_is_observed() -> None:
    count, total = sample("bot_event_loop_lag_seconds_count"), sample("bot_event_loop_lag_seconds_sum")
    stop = asyncio.Event()
    watch = asyncio.create_task(pauses.watch_lag(stop, every=0.01))
    await asyncio.sleep(0.005)
    asyncio.get_running_loop().call_soon(time.sleep, 0.06)  # a callback holding the loop ~50 ms past a due timer
    await asyncio.sleep(0.1)
    stop.set()
    await watch
    assert sample("bot_event_loop_lag_seconds_count") >= count + 2
    assert sample("bot_event_loop_lag_seconds_sum") - total >= 0.04


async def test_the_complaint_router_is_loaded_at_start_up_or_left_to_the_first_report(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken"
    (broken / "models").mkdir(parents=True)
    (broken / "models" / "routing.npz").write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="bot.services.routing"):
        await routing.preload(broken)  # logged, not raised: the service still starts
    assert "complaint router not loaded at start-up" in caplog.text
    with pytest.raises((ValueError, OSError)):
        await routing.route(broken, "3号楼电梯坏了")  # the first report tries again, as before
