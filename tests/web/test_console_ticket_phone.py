"""Staff who must call a resident (an emergency, a visit, 回访) see the ticket's full contact phone
on asking for it: the ticket page masks it and offers 显示完整号码, a POST that answers the page with
the number (a tel: link) and records who looked in the timeline (a private event); the page read
again is masked again. Not for another department's staff, operators, or without the CSRF token."""

from __future__ import annotations

import html
from typing import Any

from tests.web.console_util import LI, WANG, YUN, login, reported_ticket, start_console, timeline

PHONE = "13912345678"


async def test_staff_see_the_full_phone_on_asking_and_it_is_recorded(service_factory: Any, database_url: str,
                                                                      fake_api: str) -> None:
    svc = await start_console(service_factory, database_url, fake_api, LI, WANG, YUN, redis=True)
    li = await login(svc.http, svc.base, "li")
    path, _number = await reported_ticket(svc, li, "o_ticket_phone_0001", "5号楼2单元301厨房水管漏水了", phone=PHONE)
    status, page, _ = await li.get(path)
    assert status == 200
    assert PHONE not in page and "139****5678" in page and "显示完整号码" in page
    status, page, _ = await li.post(path + "/phone")
    assert status == 200, page[:300]
    assert f'href="tel:{PHONE}"' in page
    assert "查看联系电话" in timeline(page) and "li" in timeline(page)
    status, page, _ = await li.get(path)
    assert PHONE not in page  # shown once, on the page that answered the POST
    assert "查看联系电话" in html.unescape(page)
    status, page, _ = await li.post(path + "/phone", csrf=False)
    assert status == 403 and PHONE not in page
    wang = await login(svc.http, svc.base, "wang")  # 环卫所: not their ticket
    status, page, _ = await wang.post(path + "/phone")
    assert status == 403 and PHONE not in page
    yun = await login(svc.http, svc.base, "yun")
    status, page, _ = await yun.post(path + "/phone")
    assert status in (302, 303, 403) and PHONE not in page
