"""What memory holds (``bot/services/readmostly.py``: courses, coupons and other read-mostly rows,
kept for at most ``MAX_AGE`` seconds) only spares reads: every conversation about classes and
coupons must go the same way when nothing is held any more, as it does when a resident answers
more than a second later on a busy server. Run with ``MAX_AGE`` below zero, so every ask reads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.services import readmostly
from tests.conversations import script
from tests.conversations.script import Conversation
from tests.conversations.test_conversations import Suite, suite  # noqa: F401
from tests.conversations.test_conversations import test_conversation as run_conversation

pytestmark = pytest.mark.asyncio(loop_scope="module")

CATALOGUE = [c for c in script.load() if {"course", "coupon"} & set(c.covers)]


@pytest.fixture
def nothing_held(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(readmostly, "MAX_AGE", -1.0)
    yield


@pytest.mark.parametrize("conv", CATALOGUE, ids=[c.id for c in CATALOGUE])
async def test_conversation_with_nothing_held(suite: Suite, conv: Conversation,  # noqa: F811
                                              nothing_held: None) -> None:
    await run_conversation(suite, conv)
