"""A ticket's forms refused over HTTP say in Chinese what is missing, naming the field, and never
show the ticket service's English (its messages are for the API)."""

from __future__ import annotations

import html
import re

from tests.web.console_util import ZHANG, login, reported_ticket, start_console


def error(page: str) -> str:
    found = re.search(r'id="error">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


async def test_refused_ticket_forms_name_what_is_missing(service_factory, sqlite_url, fake_api):
    svc = await start_console(service_factory, sqlite_url, fake_api, ZHANG)
    zhang = await login(svc.http, svc.base, "zhang")
    ticket, _ = await reported_ticket(svc, zhang, "o_ticket_forms_0001", "3号楼2单元楼道灯坏了好几天了",
                                 phone="不留")
    cases = [
        ({"action": "reopen-everything"}, "请选择列表中的操作。"),
        ({"action": "dispatch", "department": "不存在的部门"}, "请选择列表中的部门。"),
        ({"action": "reject"}, "不予受理需要填写原因。"),
        ({"action": "dispatch", "department": "物业服务中心"}, ""),
        ({"action": "answer"}, "答复办结需要填写答复内容。"),
    ]
    for form, said in cases:
        status, page, _ = await zhang.post(f"{ticket}/transition", form)
        if not said:
            assert status == 303, (form, status, error(page))
            continue
        assert status == 400 and error(page) == said, (form, status, error(page))
        assert not re.search(r"\b(unknown|needs|must)\b", page), page
    status, page, _ = await zhang.post(f"{ticket}/comments", {"text": "  "})
    assert status == 400 and error(page) == "内容不能为空。"
