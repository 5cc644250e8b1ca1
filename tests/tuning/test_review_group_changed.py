"""A review decision names the group as the operator saw it (its ``version``): when new messages
joined the group meanwhile, or another operator decided it, the decision is refused (409 naming the
field) and nothing is labelled; the console says so and shows the queue as it is now."""

from __future__ import annotations

import html
import re
from typing import Any

from tests.api.conftest import Api, assert_error
from tests.tuning.test_tuning_api import NOT_UNDERSTOOD, post, say
from tests.web.console_util import add_users, login

JOINED = NOT_UNDERSTOOD + "！"  # not understood either, and similar enough to join its group


async def group_of(api: Api, text: str) -> dict[str, Any]:
    queue = await api.ok("/tuning/review", "operator", kind="intent")
    return dict(next(g for g in queue["groups"] if any(i["text"] == text for i in g["items"])))


async def test_api_refuses_a_decision_on_a_changed_group(api: Api) -> None:
    await say(api, NOT_UNDERSTOOD)
    seen = await group_of(api, NOT_UNDERSTOOD)
    texts = [i["text"] for i in seen["items"]]
    assert texts == [NOT_UNDERSTOOD] and seen["version"]

    await say(api, JOINED, "oTuningApi0000000000000002")  # arrives while the operator reads the group
    status, body = await post(api, "/tuning/review", {"kind": "intent", "texts": texts, "action": "intent",
                                                      "intent": "complaint", "version": seen["version"]})
    assert_error(status, body, 409, "review_changed")
    assert body["error"]["details"] == {"field": "version"}
    now = await group_of(api, NOT_UNDERSTOOD)  # nothing was decided
    assert {i["text"] for i in now["items"]} == {NOT_UNDERSTOOD, JOINED} and now["version"] != seen["version"]

    # a text that is not in the group of the version named
    status, body = await post(api, "/tuning/review", {"kind": "intent", "texts": ["别的话"], "action": "noise",
                                                      "version": now["version"]})
    assert_error(status, body, 409, "review_changed")
    assert body["error"]["details"] == {"field": "texts"}

    both = [i["text"] for i in now["items"]]
    status, body = await post(api, "/tuning/review", {"kind": "intent", "texts": both, "action": "intent",
                                                      "intent": "complaint", "version": now["version"]})
    assert status == 200 and body["decided"] == 2, body
    # the same decision again (a second operator on the old page): the group is gone
    status, body = await post(api, "/tuning/review", {"kind": "intent", "texts": both, "action": "noise",
                                                      "version": now["version"]})
    assert_error(status, body, 409, "review_changed")
    assert (await api.ok("/tuning/draft", "operator"))["summary"]["labelled"] == 2


async def test_console_says_reload_when_the_group_changed(api: Api) -> None:
    await add_users(api.svc.settings.database_url, ("yun", "operator", {}))
    op = await login(api.svc.http, api.svc.base, "yun")
    await say(api, NOT_UNDERSTOOD)
    status, page, _ = await op.get("/console/tuning")
    assert status == 200
    card = page[page.index("<h2>" + NOT_UNDERSTOOD):].split("</section>")[0]
    form = {name: html.unescape(value) for name, value in re.findall(r'name="(texts|version)" value="([^"]*)"', card)}
    assert form["texts"] == NOT_UNDERSTOOD and form["version"]

    await say(api, JOINED, "oTuningApi0000000000000002")
    status, page, _ = await op.post("/console/tuning/review", {"kind": "intent", **form, "intent": "complaint",
                                                               "action": "intent"})
    assert status == 409
    assert "这一组在您打开页面之后有了变化" in page and "请重新核对后再标注" in page
    card = page[page.index("<h2>" + NOT_UNDERSTOOD):].split("</section>")[0]
    assert html.escape(JOINED) in card or JOINED in card  # the page shows the group as it is now
    assert (await api.ok("/tuning/draft", "operator"))["summary"]["labelled"] == 0

    fresh = {name: html.unescape(value) for name, value in re.findall(r'name="(texts|version)" value="([^"]*)"', card)}
    status, _, resp = await op.post("/console/tuning/review", {"kind": "intent", **fresh, "intent": "complaint",
                                                               "action": "intent"})
    assert status == 303 and "notice=" in resp.headers["Location"]
    assert (await api.ok("/tuning/draft", "operator"))["summary"]["labelled"] == 2
