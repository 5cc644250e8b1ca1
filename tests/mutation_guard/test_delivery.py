"""bot/handler/delivery.py: undelivered notices in front of an answer, as a rule (the wire path is
``tests/tickets/test_status_pushes.py``), and a retry's replay of the stored answer over the wire.
Written against mutants that survived the earlier tests (docs/testing.md)."""

from __future__ import annotations

from bot.handler.delivery import _with_notices
from bot.messages import Out


def text(content: str) -> dict:
    return {"msgtype": "text", "text": {"content": content}}


def test_notices_go_in_front_of_a_text_answer_once_joined_by_a_blank_line():
    outs, shown = _with_notices(
        [Out.text("答复"), Out.text("第二条")], [(7, text("通知一")), (9, text("通知二"))]
    )
    assert outs == [Out.text("通知一\n\n通知二\n\n答复"), Out.text("第二条")]
    assert shown == [7, 9]


def test_notices_without_text_are_skipped():
    notices = [(1, text("")), (2, {"msgtype": "image"}), (3, None), (4, "not a dict"), (5, text("留言"))]
    outs, shown = _with_notices([Out.text("答复")], notices)
    assert (outs, shown) == ([Out.text("留言\n\n答复")], [5])
    assert _with_notices([Out.text("答复")], notices[:4]) == ([Out.text("答复")], [])


def test_a_silent_answer_shows_no_notices():
    assert _with_notices([], [(1, text("通知"))]) == ([], [])


def test_before_an_answer_that_is_not_text_each_notice_is_a_message_of_its_own():
    image = Out(kind="image", media_id="m1")
    outs, shown = _with_notices([image], [(1, text("通知一")), (2, text("通知二"))])
    assert (outs, shown) == ([Out.text("通知一"), Out.text("通知二"), image], [1, 2])


async def test_a_retry_gets_the_stored_answer(service_factory, sqlite_url, fake_api):
    svc = await service_factory(sqlite_url, fake_api, BOT_WECHAT_AES_KEY="")
    sender = svc.sender()
    fields = sender.text("o_retry_guard", "你好")
    first = await sender.send(svc.http, fields)
    again = await sender.send(svc.http, fields)
    assert first.status == again.status == 200 and first.content
    assert again.content == first.content
