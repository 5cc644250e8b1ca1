"""The JSON API through HTTP on the running service: a client with one token per role."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from bot.api.tokens import ROLES, create_token
from bot.clock import Clock
from bot.storage.db import Database
from tests.conftest import Service

ANON = ""  # token value meaning "no Authorization header"


@dataclasses.dataclass
class Api:
    svc: Service
    tokens: dict[str, str]  # role → secret

    @property
    def base(self) -> str:
        return self.svc.base + "/api/v1"

    async def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        params: dict[str, str] | list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        """``token``: a role name, a secret, or ANON; default the admin token."""
        token = self.tokens["admin"] if token is None else self.tokens.get(token, token)
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        url = path if path.startswith("http") else self.base + path
        async with self.svc.http.request(method, url, params=params, headers=all_headers, **kwargs) as resp:
            text = await resp.text()
            body: Any = None
            if resp.content_type == "application/json":
                body = await resp.json()
            elif text:
                body = text
            return resp.status, body, dict(resp.headers)

    async def get(self, path: str, token: str | None = None, **params: Any) -> tuple[int, Any]:
        status, body, _ = await self.call("GET", path, token, params={k: str(v) for k, v in params.items()})
        return status, body

    async def ok(self, path: str, token: str | None = None, **params: Any) -> Any:
        status, body = await self.get(path, token, **params)
        assert status == 200, body
        return body

    async def openapi(self) -> dict[str, Any]:
        status, body = await self.get("/openapi.json", ANON)
        assert status == 200
        return dict(body)


def assert_error(status: int, body: Any, expected: int, code: str | None = None) -> str:
    """A JSON error with ``expected`` status; returns its message."""
    assert status == expected, body
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, body
    return str(error["message"])


def check_schema(document: dict[str, Any], schema: dict[str, Any], data: Any) -> None:
    """``data`` matches ``schema`` (which may ``$ref`` the document's components)."""
    validator = Draft202012Validator({**schema, "components": document["components"]})
    errors = sorted(validator.iter_errors(data), key=str)
    assert not errors, errors[0]


def response_schema(document: dict[str, Any], path: str, method: str = "get") -> dict[str, Any]:
    op = document["paths"][path][method]
    ok = next(v for k, v in op["responses"].items() if k.startswith("2"))
    return dict(ok["content"]["application/json"]["schema"])


# The staff token's department (a staff token sees its department's tickets and its own, as in the
# console); tickets of other departments are the supervisor token's.
STAFF_DEPARTMENT = "物业服务中心"


async def make_tokens(database_url: str) -> dict[str, str]:
    db = Database(database_url)
    try:
        tokens = {}
        for role in ROLES:
            department = STAFF_DEPARTMENT if role == "staff" else None
            secret, _ = await create_token(db, f"test {role}", role, Clock().now(), department=department)
            tokens[role] = secret
        return tokens
    finally:
        await db.dispose()


@pytest.fixture
async def api(service: Service) -> Api:
    return Api(service, await make_tokens(service.settings.database_url))
