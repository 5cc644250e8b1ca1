"""The route registry as later issues use it: a route with a JSON body, declared on its own
registry and served over HTTP, with a second authenticator (as console login sessions will be)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.api.auth import AUTHENTICATORS, Authenticator, Principal
from bot.api.errors import error_middleware, unauthorized
from bot.api.registry import ID, Call, Registry, obj
from tests.conftest import free_port

SECRET_NOTE = "13800138000 住在3号楼"  # personal data that must not reach the log

NOTE = obj(
    {
        "text": {"type": "string", "minLength": 1, "maxLength": 200},
        "urgent": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    required=["text"],
)


async def by_header(request: web.Request) -> Principal | None:
    """A stand-in for a login session: ``X-Test-Role`` names the role."""
    role = request.headers.get("X-Test-Role")
    if role is None:
        return None
    if role == "bogus":
        raise unauthorized("bad session", "invalid_session")
    return Principal("session", 7, "tester", role)


def build_registry() -> Registry:
    reg = Registry(title="test")
    reg.component("Note", NOTE)

    @reg.route(
        "POST",
        "/notes/{id}",
        roles={"staff"},
        summary="Add a note",
        path_params={"id": ID},
        body=NOTE,
        response={"$ref": "#/components/schemas/Note"},
        status=201,
    )
    async def add_note(call: Call) -> dict[str, Any]:
        assert call.principal is not None
        return {"id": call.path["id"], "by": call.principal.name, **call.body}

    @reg.route("DELETE", "/notes/{id}", roles={"supervisor"}, summary="Delete a note", path_params={"id": ID}, status=204)
    async def delete_note(call: Call) -> None:
        return None

    @reg.route("GET", "/boom", roles={"staff"}, summary="A bug")
    async def boom(call: Call) -> None:
        raise RuntimeError(f"cannot store {SECRET_NOTE}")

    return reg


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, aiohttp.ClientSession, Registry]]:
    reg = build_registry()
    app = web.Application(middlewares=[error_middleware], client_max_size=4096)
    authenticators: list[Authenticator] = [by_header]
    app[AUTHENTICATORS] = authenticators
    reg.mount(app, "/api/v1")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession(headers={"X-Test-Role": "staff"}) as http:
        yield f"http://127.0.0.1:{port}/api/v1", http, reg
    await runner.cleanup()


async def post(http: aiohttp.ClientSession, url: str, data: Any, **headers: str) -> tuple[int, Any]:
    body = data if isinstance(data, bytes | str) else None
    kwargs: dict[str, Any] = {"data": body} if body is not None else {"json": data}
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    async with http.post(url, headers=headers, **kwargs) as resp:
        return resp.status, await resp.json() if resp.content_type == "application/json" else None


async def test_valid_body_reaches_the_handler(served):
    base, http, _ = served
    status, body = await post(http, f"{base}/notes/5", {"text": "电梯坏了", "urgent": True})
    assert status == 201 and body == {"id": 5, "by": "tester", "text": "电梯坏了", "urgent": True}


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", "missing_body", "body"),
        (b"{not json", "bad_json", "JSON"),
        (b"[1, 2", "bad_json", "JSON"),
        (b'{"text": NaN}', "bad_json", "NaN"),
        (b"\xff\xfe{}", "bad_json", "UTF-8"),
        (b"[" * 2000 + b"]" * 2000, "bad_json", "nested"),
        ({"text": 5}, "invalid_body", "text"),
        ({"text": ""}, "invalid_body", "text"),
        ({"urgent": True}, "invalid_body", "text"),
        ({"text": "x", "colour": "red"}, "invalid_body", "colour"),
        ({"text": "x", "tags": ["a", 1]}, "invalid_body", "tags[1]"),
        ({"text": "x\u0000y"}, "invalid_body", "NUL"),
        ({"text": "x\ud800y"}, "invalid_body", "surrogate"),
        ({"text": "x", "tags": ["\udfff"]}, "invalid_body", "tags[0]"),
        ([{"text": "x"}], "invalid_body", "object"),
        ("null", "invalid_body", "object"),
    ],
)
async def test_bad_bodies_are_400_with_the_reason(served, data, code, words):
    base, http, _ = served
    status, body = await post(http, f"{base}/notes/5", data)
    assert status == 400, body
    assert body["error"]["code"] == code and words in body["error"]["message"], body


async def test_other_refusals(served):
    base, http, _ = served
    status, body = await post(http, f"{base}/notes/5", '{"text": "x"}', **{"Content-Type": "text/plain"})
    assert status == 415 and body["error"]["code"] == "unsupported_media_type"
    status, body = await post(http, f"{base}/notes/5", {"text": "x" * 10000})
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = await post(http, f"{base}/notes/abc", {"text": "x"})
    assert status == 400 and "id" in body["error"]["message"]
    status, body = await post(http, f"{base}/notes/5", {"text": "x"}, **{"X-Test-Role": "merchant"})
    assert status == 403
    status, body = await post(http, f"{base}/notes/5", {"text": "x"}, **{"X-Test-Role": "bogus"})
    assert status == 401 and body["error"]["code"] == "invalid_session"
    async with aiohttp.ClientSession() as anonymous, anonymous.post(f"{base}/notes/5", json={"text": "x"}) as resp:
        assert resp.status == 401
    async with http.delete(f"{base}/notes/5", headers={"X-Test-Role": "admin"}) as resp:
        assert resp.status == 204 and await resp.read() == b""


async def test_a_bug_is_a_json_500_and_the_log_has_no_personal_data(served, caplog):
    base, http, _ = served
    with caplog.at_level(logging.ERROR, logger="bot.api"):
        async with http.get(f"{base}/boom") as resp:
            assert resp.status == 500
            assert (await resp.json())["error"]["code"] == "internal_error"
    assert "RuntimeError" in caplog.text and "/boom" in caplog.text
    assert "13800138000" not in caplog.text and "3号楼" not in caplog.text


async def test_openapi_describes_body_roles_and_errors(served):
    _, _, reg = served
    doc = reg.openapi()
    op = doc["paths"]["/notes/{id}"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == NOTE
    assert op["x-roles"] == ["admin", "staff"]
    assert {"201", "400", "401", "403", "404", "415"} <= set(op["responses"])
    assert op["parameters"] == [{"name": "id", "in": "path", "required": True, "schema": ID, "description": ID["description"]}]
    assert doc["paths"]["/notes/{id}"]["delete"]["x-roles"] == ["admin", "supervisor"]


def test_declarations_that_would_leave_a_route_open_or_undocumented_are_refused():
    reg = Registry()

    async def handler(call: Call) -> None:
        return None

    bad: list[dict[str, Any]] = [
        {"method": "GET", "path": "/x"},  # neither roles nor public
        {"method": "GET", "path": "/x", "roles": {"staff"}, "public": True},
        {"method": "GET", "path": "/x", "roles": {"janitor"}},
        {"method": "GET", "path": "/x/{id}", "roles": {"staff"}},  # undeclared path parameter
        {"method": "GET", "path": "/x", "roles": {"staff"}, "body": NOTE},
        {"method": "GET", "path": "/api/v1/x", "roles": {"staff"}},
        {"method": "GET", "path": "/x", "roles": {"staff"}, "query": obj({"tags": {"type": "array"}})},
        {"method": "FETCH", "path": "/x", "roles": {"staff"}},
    ]
    for kwargs in bad:
        with pytest.raises(ValueError):
            reg.route(summary="s", **kwargs)(handler)
    reg.route("GET", "/x", roles={"staff"}, summary="s")(handler)
    with pytest.raises(ValueError, match="twice"):
        reg.route("GET", "/x", roles={"staff"}, summary="s")(handler)
    assert len(reg.routes) == 1
