"""Voice messages within a complaint: stored as attachments, recognised text answers the step."""

from __future__ import annotations

from pathlib import Path

from tests.tickets.conftest import Desk
from tests.tickets.test_journeys import NUMBER, register_media

AMR = b"#!AMR\n" + bytes(range(40))


async def test_voice_with_recognition_is_stored_and_answers_the_step(desk: Desk) -> None:
    s = desk.svc.sender()
    openid = "o_voice1"
    assert "具体位置" in await desk.say(openid, "楼道里堆满了杂物没人清理")
    media_id = await register_media(desk, AMR, "audio/amr")
    # The recognised text is the answer to "where"; the voice itself goes with the ticket.
    reply = await desk.send(s.voice(openid, "5号楼2单元一楼", media_id=media_id))
    assert "联系电话" in reply, reply  # then the phone: 安全隐患's staff visit
    assert NUMBER.search(await desk.say(openid, "不留"))

    (ticket,) = await desk.tickets()
    assert ticket.building == "5"
    voices = [a for a in ticket.attachments if a["kind"] == "voice"]
    assert len(voices) == 1, ticket.attachments
    voice = voices[0]
    assert voice["media_id"] == media_id and voice["transcript"] == "5号楼2单元一楼"
    assert voice["file"].startswith("voice/") and voice["file"].endswith(".amr")
    assert voice["content_type"] == "audio/amr"
    assert (Path(desk.svc.settings.media_dir) / voice["file"]).read_bytes() == AMR


async def test_voice_without_recognition_is_stored_and_acknowledged(desk: Desk) -> None:
    s = desk.svc.sender()
    openid = "o_voice2"
    assert "具体位置" in await desk.say(openid, "门口的路灯晚上一直不亮")
    media_id = await register_media(desk, AMR, "audio/amr")
    reply = await desk.send(s.voice(openid, None, media_id=media_id))
    assert "收到您的语音" in reply
    assert await desk.tickets() == []  # still waiting for the place
    reply = await desk.say(openid, "7号楼东门")
    assert NUMBER.search(reply) or "联系电话" in reply, reply
    if not NUMBER.search(reply):
        assert NUMBER.search(await desk.say(openid, "不留"))
    (ticket,) = await desk.tickets()
    (voice,) = [a for a in ticket.attachments if a["kind"] == "voice"]
    assert voice["transcript"] == "" and voice["file"].startswith("voice/")
    assert (Path(desk.svc.settings.media_dir) / voice["file"]).read_bytes() == AMR


async def test_voice_whose_media_cannot_be_downloaded_is_kept_by_id(desk: Desk) -> None:
    s = desk.svc.sender()
    openid = "o_voice3"
    assert "具体位置" in await desk.say(openid, "楼上天天半夜装修太吵了")
    reply = await desk.send(s.voice(openid, None, media_id="FAKEMEDIA_unknown"))
    assert "没能保存" in reply


async def test_media_sent_after_an_urgent_ticket_was_created_joins_it(desk: Desk) -> None:
    s = desk.svc.sender()
    openid = "o_urgent_media"
    first = await desk.say(openid, "楼道里燃气味很大")  # urgent: ticket at once, then the place is asked
    assert "119" in first and NUMBER.search(first)
    photo_id = await register_media(desk, b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png")
    assert "已附在您的反映里" in await desk.send(s.image(openid, media_id=photo_id))
    voice_id = await register_media(desk, AMR, "audio/amr")
    reply = await desk.send(s.voice(openid, "6号楼3单元", media_id=voice_id))
    assert "位置已补充" in reply
    (ticket,) = await desk.tickets()
    kinds = sorted(a["kind"] for a in ticket.attachments)
    assert kinds == ["image", "voice"], ticket.attachments
    assert all(a.get("file") for a in ticket.attachments)
    assert ticket.building == "6"
