"""Every API route, found by walking the running application's router: declared through the
registry, described in the OpenAPI document, closed to anonymous and wrong-role callers, and never
answering bad input with a 5xx. A route added later is checked by these tests without editing them."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from bot.api.registry import api_route
from bot.api.tokens import ROLES
from tests.api.conftest import ANON, Api, assert_error

PUBLIC = {("GET", "/api/v1/openapi.json")}
_PARAM = re.compile(r"\{([^}/:]+)(?::[^}]*)?\}")


def mounted_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path template, handler) of every route, descending into sub-applications (whose
    resources carry their full path once mounted)."""
    found = []
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:  # a sub-application mounted at a prefix
            found.extend(mounted_routes(info["app"]))
            continue
        for r in resource:
            found.append((r.method, resource.canonical, r.handler))
    return found


def api_routes(api: Api) -> list[tuple[str, str, Any]]:
    routes = [
        (m, p, h) for m, p, h in mounted_routes(api.svc.runner.app) if p.startswith("/api/") and m != "HEAD"
    ]
    assert len(routes) >= 5, routes
    return routes


def fill(path: str, value: str = "1") -> str:
    return _PARAM.sub(value, path)


async def test_every_api_route_is_declared_in_the_registry(api: Api):
    for method, path, handler in api_routes(api):
        declared = api_route(handler)
        assert declared is not None, f"{method} {path} was added to the router by hand, not with @route"
        assert declared.full_path == path and declared.method == method


async def test_every_route_is_in_openapi_and_every_operation_is_mounted(api: Api):
    doc = await api.openapi()
    prefix = doc["servers"][0]["url"]
    described = {
        (method.upper(), prefix + path) for path, ops in doc["paths"].items() for method in ops
    }
    mounted = {(m, p) for m, p, _ in api_routes(api)}
    assert mounted == described


async def test_openapi_document_is_well_formed(api: Api):
    doc = await api.openapi()
    assert doc["openapi"].startswith("3.1")
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    operation_ids = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            operation_ids.append(op["operationId"])
            assert op["summary"], (method, path)
            assert any(code.startswith("2") for code in op["responses"])
            for param in op.get("parameters", []):
                Draft202012Validator.check_schema(param["schema"])
            if (method.upper(), doc["servers"][0]["url"] + path) in PUBLIC:
                assert op["security"] == []
            else:
                assert "security" not in op  # the document-wide bearerAuth applies
                assert {"401", "403"} <= set(op["responses"])
                assert "admin" in op["x-roles"] and set(op["x-roles"]) <= set(ROLES)
    assert len(operation_ids) == len(set(operation_ids))


async def test_every_route_refuses_anonymous_and_bad_tokens(api: Api):
    for method, path, _ in api_routes(api):
        url = api.svc.base + fill(path)
        for token in (ANON, "csb_" + "0" * 43):
            status, body, _ = await api.call(method, url, token, json={} if method != "GET" else None)
            if (method, path) in PUBLIC:
                assert status == 200, (method, path)
            else:
                assert_error(status, body, 401)


async def test_every_route_refuses_roles_it_does_not_name(api: Api):
    doc = await api.openapi()
    prefix = doc["servers"][0]["url"]
    checked = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if op.get("security") == []:
                continue
            for role in set(ROLES) - set(op["x-roles"]):
                status, body, _ = await api.call(method.upper(), api.svc.base + prefix + fill(path), role)
                assert_error(status, body, 403, "forbidden")
                checked += 1
    assert checked > 0


BAD_VALUES = [
    "", "x", "-1", "0", "1.5", "1e309", "99999999999999999999999", "2147483648", "true", "%00", "\x00",
    "2025-13-45", "0001-01-01T00:00:00+08:00", "é" * 300,
]


async def test_bad_input_never_gets_a_5xx(api: Api):
    """Every declared parameter of every route, given junk, gets a 2xx or a JSON 4xx."""
    doc = await api.openapi()
    prefix = doc["servers"][0]["url"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = op.get("parameters", [])
            for value in BAD_VALUES:
                path_value = value if value not in ("", "\x00") else "x"
                url = api.svc.base + prefix + fill(path, path_value.replace("/", "_"))
                for param in [p for p in params if p["in"] == "query"] or [None]:
                    query = {param["name"]: value} if param else {}
                    status, body, _ = await api.call(method.upper(), url, params=query)
                    assert status < 500, (method, path, param and param["name"], value, body)
                    if status >= 400:
                        assert_error(status, body, status)
            # unknown parameters are named, not ignored
            status, body, _ = await api.call(method.upper(), api.svc.base + prefix + fill(path), params={"nope": "1"})
            if op.get("security") != []:
                assert_error(status, body, 400, "unknown_param")


async def test_unknown_paths_and_methods_under_the_api_are_json(api: Api):
    status, body, _ = await api.call("GET", "/no-such-route")
    assert_error(status, body, 404, "not_found")
    status, body, headers = await api.call("DELETE", "/residents")
    assert_error(status, body, 405, "method_not_allowed")
    assert "GET" in headers.get("Allow", "")
