"""Mount the JSON API at ``/api/v1``: every route declared in a ``bot.api`` module, the OpenAPI
document (the only public route) and ``/me``.

The API is an aiohttp sub-application, so its error middleware (JSON errors, also for unknown paths
and wrong methods under ``/api/v1``) does not touch the WeChat endpoint or the web pages.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from aiohttp import web

import bot.api
from bot.api.auth import ALL_ROLES, AUTHENTICATORS, Authenticator, bearer_token
from bot.api.errors import error_middleware
from bot.api.registry import API, PREFIX, Call, component, route

# Modules that hold machinery, not routes.
_INFRASTRUCTURE = frozenset({"auth", "errors", "paging", "registry", "routes", "tokens"})

API_APP = web.AppKey("api_app", web.Application)


def route_modules() -> list[str]:
    """Every ``bot.api`` module that may declare routes (a new module is picked up by itself)."""
    return sorted(
        f"bot.api.{m.name}"
        for m in pkgutil.iter_modules(bot.api.__path__)
        if m.name not in _INFRASTRUCTURE and not m.name.startswith("_")
    )


def setup(app: web.Application) -> web.Application:
    for name in route_modules():
        importlib.import_module(name)
    api = web.Application(middlewares=[error_middleware])
    authenticators: list[Authenticator] = [bearer_token]
    api[AUTHENTICATORS] = authenticators
    API.mount(api)
    app.add_subapp(PREFIX, api)
    app[API_APP] = api
    return api


@route(
    "GET",
    "/openapi.json",
    public=True,
    summary="This API's OpenAPI 3.1 description",
    tags=("meta",),
    response={"type": "object", "description": "an OpenAPI 3.1 document"},
)
async def openapi(call: Call) -> dict[str, Any]:
    return call.route.registry.openapi()


ME = component(
    "Me",
    {
        "type": "object",
        "required": ["kind", "id", "name", "role"],
        "properties": {
            "kind": {"type": "string", "description": "how the caller authenticated: token (later: session)"},
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "role": {"type": "string", "enum": sorted(ALL_ROLES)},
        },
    },
)


@route(
    "GET",
    "/me",
    roles=ALL_ROLES,
    summary="Who am I",
    description="The authenticated caller: credential kind, id, name and role.",
    tags=("meta",),
    response=ME,
)
async def me(call: Call) -> dict[str, Any]:
    assert call.principal is not None
    p = call.principal
    return {"kind": p.kind, "id": p.id, "name": p.name, "role": p.role}
