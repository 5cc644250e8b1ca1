"""A ticket staff make from a bound resident's conversation, for a place outside the resident's
building (a road, the estate's gate), is not filed under that building; with no place written, or
only a unit and room, the resident's building is still the ticket's."""

from __future__ import annotations

from typing import Any

from tests.web.console_util import ZHANG, login, say, start_console, waiting_resident


async def test_a_ticket_for_a_road_is_not_in_the_residents_building(service_factory: Any, sqlite_url: str,
                                                                       fake_api: str) -> None:
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    openid = "o_console_place_road_1"
    s = svc.sender()
    assert (await s.send(svc.http, s.event(openid, "subscribe", "qrscene_building:新建南社区/6号楼"))).status == 200
    await say(svc, openid, "转人工")
    zhang = await login(svc.http, svc.base, "zhang")
    conversation = f"/console/conversations/{await waiting_resident(svc, zhang, openid)}"
    places = {"新建南路": "新建南路", "": "6号楼", "2单元301": "6号楼2单元301"}
    for written, shown in places.items():
        _, _, resp = await zhang.post(f"{conversation}/ticket", {"text": "路面有个大坑", "category": "市政设施",
                                                                 "place": written})
        _, page, _ = await zhang.get(resp.headers["Location"])
        dd = page.split("<dt>地点</dt><dd>", 1)[1].split("</dd>", 1)[0]
        assert shown in dd, (written, dd)
        if written == "新建南路":
            assert "6号楼" not in dd, dd  # and the road is named beside the community
