"""The tuning loop through the JSON API on the running service: review, label, evaluate, publish
(the running bot classifies the message the new way, no restart), roll back, export; the
knowledge side ("don't know" → a new entry → answered); the editors and their conflict checks."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import sys
import zipfile
from typing import Any

from intents.dataset import PACKAGE_DATA_DIR
from knowledge.entries import DEFAULT_ENTRIES_DIR
from tests.api.conftest import Api, assert_error, check_schema, response_schema

NOT_UNDERSTOOD = "电视老是没信号"  # fallback with the packaged data; a complaint once labelled
UNKNOWN_QUESTION = "社区游泳馆几点开门"
CLARIFIED = "活动证明"  # between query and course_booking: the bot asks which  # routed to the knowledge base, which has no answer for it
POOL = {
    "id": "community-pool", "question": "社区游泳馆的开放时间？", "answer": "社区游泳馆每天9:00-21:00开放，周一下午闭馆清洁。",
    "department": "社区服务中心", "tags": ["游泳馆", "开放时间"],
}
_ids = iter(range(10_000_000, 20_000_000))


async def say(api: Api, text: str, openid: str = "oTuningApi0000000000000001") -> str:
    sender = api.svc.sender("safe")
    reply = await api.svc.send(sender.text(openid, text, msg_id=next(_ids)), "safe")
    assert reply.status == 200
    return reply.content or ""


async def last_intent(api: Api, text: str) -> str:
    items = (await api.ok("/messages", "operator", direction="in"))["items"]
    return str(next(m["intent"] for m in items if m["content"] == text))


async def served(api: Api, version: int) -> None:
    """Wait until this server process serves ``version`` (bounded by the test's timeout)."""
    while (await api.ok("/tuning/draft", "operator"))["served"] != version:  # noqa: ASYNC110 - polling the server
        await asyncio.sleep(0.2)


async def evaluated(api: Api) -> Any:
    """The evaluation's figures: a 202 ("computing") while the draft trains, asked again until 200."""
    for _ in range(600):
        status, body = await api.get("/tuning/evaluation", "operator")
        if status == 200:
            return body
        assert status == 202 and body == {"status": "computing"}, (status, body)
        await asyncio.sleep(0.5)
    raise AssertionError("the evaluation never finished")


async def post(api: Api, path: str, body: Any, token: str = "operator") -> tuple[int, Any]:
    status, data, _ = await api.call("POST", path, token, json=body)
    return status, data


async def test_label_evaluate_publish_rollback_export(api: Api):
    await say(api, NOT_UNDERSTOOD)
    await say(api, NOT_UNDERSTOOD + "！", "oTuningApi0000000000000002")
    assert await last_intent(api, NOT_UNDERSTOOD) == "fallback"
    doc = await api.openapi()

    queue = await api.ok("/tuning/review", "operator", kind="intent")
    check_schema(doc, response_schema(doc, "/tuning/review"), queue)
    group = next(g for g in queue["groups"] if any(i["text"] == NOT_UNDERSTOOD for i in g["items"]))
    assert group["count"] == 2 and "fallback" in group["reasons"]  # the two phrasings, one group
    texts = [i["text"] for i in group["items"]]

    # a clarifying question answered with a number: the choice is the suggestion, the number no message
    asked = await say(api, CLARIFIED, "oTuningApi0000000000000009")
    assert "1." in asked or "1、" in asked or "1 " in asked, asked
    await say(api, "1", "oTuningApi0000000000000009")
    queue = await api.ok("/tuning/review", "operator", kind="intent")
    clarified = next(g for g in queue["groups"] if g["text"] == CLARIFIED)
    assert "clarified" in clarified["reasons"] and clarified["suggestion"] in ("query", "course_booking")
    assert not any(i["text"] == "1" for g in queue["groups"] for i in g["items"])

    status, body = await post(api, "/tuning/review", {"kind": "intent", "texts": texts, "action": "intent",
                                                      "intent": "nonsense"})
    assert_error(status, body, 400, "invalid_decision")
    status, body = await post(api, "/tuning/review", {"kind": "intent", "texts": texts, "action": "intent",
                                                      "intent": "complaint"})
    assert status == 200, body
    assert body["decided"] == 2 and body["draft"]["pending"] and body["draft"]["summary"]["labelled"] == 2
    queue = await api.ok("/tuning/review", "operator", kind="intent")
    assert not any(i["text"] in texts for g in queue["groups"] for i in g["items"])  # decided: gone

    evaluation = await evaluated(api)
    draft, published = evaluation["draft"]["intents"], evaluation["published"]["intents"]
    assert {"written", "split", "reviewed"} <= set(draft)
    assert published["reviewed"]["per_label"]["complaint"]["recall"] == 0.0
    assert draft["reviewed"]["per_label"]["complaint"]["recall"] == 1.0
    assert len(draft["written"]["confusion_matrix"]) == len(draft["written"]["labels"])
    assert sum(draft["written"]["confidence_histogram"]["correct"]) > 0
    assert {"right_entry", "false_unknown"} <= set(evaluation["draft"]["knowledge"]["dev"])

    status, body = await post(api, "/tuning/publish", {"note": "宽带"})
    assert_error(status, body, 400)  # only with confirmation
    status, body = await post(api, "/tuning/publish", {"confirm": True, "expected_active": 5})
    assert_error(status, body, 409)  # the operator looked at another active version
    status, body = await post(api, "/tuning/publish", {"confirm": True, "note": "宽带", "expected_active": 0})
    assert status == 200, body
    v1 = body["version"]
    await served(api, v1)
    await say(api, NOT_UNDERSTOOD, "oTuningApi0000000000000003")
    assert await last_intent(api, NOT_UNDERSTOOD) == "complaint"
    status, body = await post(api, "/tuning/publish", {"confirm": True})
    assert_error(status, body, 409)  # nothing new to publish

    files = zipfile.ZipFile(io.BytesIO(await _zip(api)))
    complaint = files.read("intents/complaint.yml").decode()
    assert f"- {NOT_UNDERSTOOD}\n" in complaint and complaint.startswith("#")

    status, body = await post(api, "/tuning/rollback", {})
    assert status == 200, body
    v2 = body["version"]
    await served(api, v2)
    await say(api, NOT_UNDERSTOOD, "oTuningApi0000000000000004")
    assert await last_intent(api, NOT_UNDERSTOOD) == "fallback"
    versions = await api.ok("/tuning/versions", "operator")
    assert versions["active"] == v2
    assert [(v["version"], v["published_by"], v["rollback_of"]) for v in versions["items"]] == [
        (v2, "test operator", 0), (v1, "test operator", None)]


async def cli(api: Api, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    env = {**os.environ, "BOT_DATABASE_URL": api.svc.settings.database_url,
           "BOT_DATA_DIR": str(api.svc.settings.data_dir), **(env or {})}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return int(proc.returncode or 0), out.decode()


async def _zip(api: Api) -> bytes:
    async with api.svc.http.get(api.base + "/tuning/export", headers={
            "Authorization": f"Bearer {api.tokens['operator']}"}) as resp:
        assert resp.status == 200 and resp.content_type == "application/zip"
        return await resp.read()


async def test_unknown_question_becomes_an_entry(api: Api):
    before = await say(api, UNKNOWN_QUESTION)
    assert "游泳馆每天" not in before
    queue = await api.ok("/tuning/review", "operator", kind="knowledge")
    group = next(g for g in queue["groups"] if g["text"] == UNKNOWN_QUESTION)
    assert group["reasons"] == {"unknown": 1}
    status, body = await post(api, "/tuning/review", {"kind": "knowledge", "texts": [UNKNOWN_QUESTION],
                                                      "action": "entry", "entry": {**POOL, "id": "Bad id"}})
    assert_error(status, body, 400, "invalid_decision")
    status, body = await post(api, "/tuning/review", {"kind": "knowledge", "texts": [UNKNOWN_QUESTION],
                                                      "action": "entry", "entry": POOL})
    assert status == 200, body
    entries = await api.ok("/tuning/entries", "operator", q="游泳馆")
    assert [e["id"] for e in entries["items"]] == ["community-pool"]
    assert UNKNOWN_QUESTION in entries["items"][0]["alternatives"]
    evaluation = await evaluated(api)
    assert evaluation["published"]["knowledge"]["reviewed"]["right_entry"] == 0.0
    assert evaluation["draft"]["knowledge"]["reviewed"]["right_entry"] == 1.0
    status, body = await post(api, "/tuning/publish", {"confirm": True})
    assert status == 200, body
    await served(api, body["version"])
    after = await say(api, UNKNOWN_QUESTION, "oTuningApi0000000000000005")
    assert "游泳馆每天9:00-21:00开放" in after
    # the published entry, exported to files to commit, on the command line
    out = api.svc.settings.data_dir / "export"
    code, text = await cli(api, "tuning", "export", "--to", str(out))
    assert code == 0, text
    exported = (out / "knowledge" / "tuning.yml").read_text(encoding="utf-8")
    assert "id: community-pool" in exported and UNKNOWN_QUESTION in exported
    code, text = await cli(api, "tuning", "versions")
    assert code == 0 and "test operator" in text and "entries 1" in text, text
    # over a checkout's data folders: written once, then the files hold the change (nothing more to export)
    folders = api.svc.settings.data_dir / "checkout"
    shutil.copytree(PACKAGE_DATA_DIR, folders / "intents")
    shutil.copytree(DEFAULT_ENTRIES_DIR, folders / "entries")
    dirs = {"BOT_INTENTS_DIR": str(folders / "intents"), "BOT_KNOWLEDGE_DIR": str(folders / "entries")}
    code, text = await cli(api, "tuning", "export", env=dirs)
    assert code == 0 and "entries/tuning.yml" in text, text
    code, text = await cli(api, "tuning", "export", env=dirs)
    assert code == 0 and "nothing to export" in text, text
    # a new phrasing for the entry, from another reviewed question
    status, body = await post(api, "/tuning/review", {"kind": "knowledge", "texts": ["泳池开放吗"],
                                                      "action": "phrasing", "entry_id": "community-pool"})
    assert status == 200, body
    entry = (await api.ok("/tuning/entries", "operator", q="community-pool"))["items"][0]
    assert entry["alternatives"][-1] == "泳池开放吗" and UNKNOWN_QUESTION in entry["alternatives"]


async def test_editors_and_their_checks(api: Api):
    changes = [
        {"op": "example", "intent": "query", "text": "社区菜园怎么申请"},
        {"op": "synonym", "intent": "coupon", "canonical": "积分", "word": "鸡粪"},
        {"op": "lookup", "intent": "coupon", "name": "merchants", "word": "老李修车铺"},
        {"op": "example", "intent": "complaint", "text": "楼道灯坏了", "add": False},
    ]
    status, body = await post(api, "/tuning/draft/changes", {"changes": changes})
    assert status == 200, body
    assert body["summary"] == {"labelled": 0, "examples": 2, "synonyms": 1, "lookups": 1, "entries": 0}
    query = await api.ok("/tuning/intents/query", "operator")
    assert "社区菜园怎么申请" in query["examples"] and query["added"] == ["社区菜园怎么申请"]
    coupon = await api.ok("/tuning/intents/coupon", "operator")
    assert "鸡粪" in coupon["synonyms"]["积分"] and "老李修车铺" in coupon["lookups"]["merchants"]
    assert (await api.get("/tuning/intents/nope", "operator"))[0] == 404
    status, body = await post(api, "/tuning/draft/changes", {"changes": [
        {"op": "example", "intent": "nope", "text": "x"}]})
    assert_error(status, body, 400, "invalid_change")
    assert (await api.ok("/tuning/draft/problems", "operator"))["conflicts"] == []
    # the same text under another intent is a conflict, flagged as `intents check` flags it
    status, body = await post(api, "/tuning/draft/changes", {"changes": [
        {"op": "example", "intent": "complaint", "text": "社区菜园怎么申请"},
        {"op": "entry", "entry": {**POOL, "id": "pool-copy", "question": "社区游泳馆的开放时间?"}},
        {"op": "entry", "entry": POOL}]})
    assert status == 200, body
    problems = await api.ok("/tuning/draft/problems", "operator")
    assert [(c["text"], c["intents"]) for c in problems["conflicts"]] == [("社区菜园怎么申请", ["complaint", "query"])]
    assert any("pool-copy" in p["message"] and "community-pool" in p["message"] for p in problems["knowledge"])
    # a draft whose files would not load (an intent left without examples) is never published
    handoff = (await api.ok("/tuning/intents/handoff", "operator"))["examples"]
    status, body = await post(api, "/tuning/draft/changes", {"changes": [
        {"op": "example", "intent": "handoff", "text": t, "add": False} for t in handoff]})
    assert status == 200, body
    assert "handoff" in (await api.ok("/tuning/draft/problems", "operator"))["error"]
    status, body = await post(api, "/tuning/publish", {"confirm": True})
    assert "does not load" in assert_error(status, body, 409)
    assert (await api.ok("/tuning/versions", "operator"))["items"] == []
    status, body = await post(api, "/tuning/draft/discard", {})
    assert status == 200 and not body["pending"] and body["summary"]["examples"] == 0
    # noise: decided (out of the queue), nothing learnt
    status, body = await post(api, "/tuning/review", {"kind": "intent", "texts": ["嗯嗯那个啥"], "action": "noise"})
    assert status == 200 and body["decided"] == 1 and body["draft"]["summary"]["labelled"] == 0
    # staff may not tune
    assert (await api.get("/tuning/draft", "staff"))[0] == 403


async def test_evaluation_answers_202_while_it_computes(api: Api, monkeypatch):
    # A draft's training takes seconds; the API answers at once that it is computing, the work
    # goes on, and asking again returns the figures (no request held for the whole training).
    import bot.api.tuning as tuning_api

    monkeypatch.setattr(tuning_api, "EVALUATION_WAIT", 0.0)
    status, body = await api.get("/tuning/evaluation", "operator")
    assert (status, body) == (202, {"status": "computing"})
    monkeypatch.setattr(tuning_api, "EVALUATION_WAIT", 5.0)
    figures = await evaluated(api)
    assert {"draft", "published"} <= set(figures)


async def test_an_answer_to_the_bots_own_question_is_not_logged_as_not_understood(api: Api):
    """"12号楼" on its own is nothing the intent engine knows, but as the answer to "where is it?"
    the report takes it: it is no "not understood" for the dashboard or the review queue."""
    openid = "oTuningApi0000000000000031"
    asked = await say(api, "楼道的灯坏了好几天了", openid)
    assert "位置" in asked, asked
    answered = await say(api, "12号楼", openid)
    assert "位置" not in answered, answered
    assert await last_intent_or_none(api, "12号楼") is None
    queue = await api.ok("/tuning/review", "operator", kind="intent")
    assert not any(i["text"] == "12号楼" for g in queue["groups"] for i in g["items"])
    # the same words with no question asked are still the engine's to judge
    await say(api, "12号楼", "oTuningApi0000000000000032")
    queue = await api.ok("/tuning/review", "operator", kind="intent")
    assert any(i["text"] == "12号楼" for g in queue["groups"] for i in g["items"])


async def last_intent_or_none(api: Api, text: str) -> str | None:
    items = (await api.ok("/messages", "operator", direction="in"))["items"]
    return next(m["intent"] for m in items if m["content"] == text)
