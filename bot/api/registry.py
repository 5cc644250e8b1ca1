"""The API's route registry: one decorator declares a route, who may call it, what it takes and
what it returns. The same declaration mounts the aiohttp route, checks the input and describes the
route in the OpenAPI 3.1 document, so a route cannot exist undocumented or unprotected.

Adding a route (a later issue's ``bot/api/tickets.py``; every module in ``bot.api`` is imported by
:func:`bot.api.routes.setup`)::

    from bot.api.auth import STAFF_ROLES
    from bot.api.registry import ID, Call, component, obj, route

    TICKET = component("Ticket", {"type": "object", "properties": {...}})

    @route(
        "POST", "/tickets/{id}/comments",
        roles=STAFF_ROLES,                       # admin is always allowed as well
        summary="Comment on a ticket",
        tags=("tickets",),
        path={"id": ID},
        body=obj({"text": {"type": "string", "minLength": 1, "maxLength": 2000}}, required=["text"]),
        response=TICKET,
        status=201,
    )
    async def comment(call: Call) -> dict[str, Any]:
        ... call.path["id"], call.body["text"], call.principal, call.db ...

The handler gets a :class:`Call` whose ``path``, ``query`` and ``body`` are already checked against
the schemas (bad input never reaches it: it is a 400 with the reason) and returns JSON-able data (or
an aiohttp response). Either ``roles`` (non-empty) or ``public=True`` must be given.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match

from bot.api.auth import ADMIN, ALL_ROLES, Principal, authenticate, authorize
from bot.api.errors import ERROR_SCHEMA, ApiError, bad_request
from bot.appkeys import RUNTIME
from bot.runtime import Runtime
from bot.storage.db import Database

PREFIX = "/api/v1"
Schema = dict[str, Any]
Handler = Callable[["Call"], Awaitable[Any]]

# Ready-made parameter schemas.
ID: Schema = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1, "description": "numeric id"}
BIG_ID: Schema = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1, "description": "numeric id"}
DATETIME: Schema = {"type": "string", "format": "date-time"}

_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_SCALARS = frozenset({"integer", "number", "boolean", "string"})
_TRUE, _FALSE = frozenset({"true", "1", "yes"}), frozenset({"false", "0", "no"})


def obj(properties: Mapping[str, Schema], required: Iterable[str] = (), additional: bool = False) -> Schema:
    """An object schema (query parameters, bodies, responses)."""
    schema: Schema = {"type": "object", "properties": dict(properties), "additionalProperties": additional}
    req = list(required)
    if req:
        schema["required"] = req
    return schema


@dataclass
class Call:
    """One API call as the handler sees it: checked input and the authenticated caller."""

    request: web.Request
    route: Route
    principal: Principal | None
    path: dict[str, Any]
    query: dict[str, Any]
    body: Any

    @property
    def rt(self) -> Runtime:
        return self.request.config_dict[RUNTIME]

    @property
    def db(self) -> Database:
        return self.rt.db

    def now(self) -> datetime:
        return self.rt.clock.now()


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # relative to PREFIX, e.g. "/residents/{id}"
    handler: Handler
    roles: frozenset[str]
    public: bool
    summary: str
    description: str
    tags: tuple[str, ...]
    path_params: Mapping[str, Schema]
    query: Schema | None
    body: Schema | None
    response: Schema | None
    status: int
    operation_id: str
    registry: Registry = field(repr=False, compare=False)
    refused: str = ""  # why other roles may not call it (the 403's message, the OpenAPI description)

    @property
    def full_path(self) -> str:
        return PREFIX + self.path

    @property
    def allowed_roles(self) -> list[str]:
        return [] if self.public else sorted({ADMIN, *self.roles})


def _type_of(schema: Schema) -> str:
    kind = schema.get("type", "string")
    if kind not in _SCALARS:
        raise ValueError(f"parameters must be scalar (integer, number, boolean, string), not {kind!r}")
    return str(kind)


def _unbounded_integers(schema: Any, where: str) -> list[str]:
    """Where an input schema lets through an integer without both bounds (which could overflow a
    database column: a 500 on PostgreSQL instead of a 400)."""
    if not isinstance(schema, dict):
        return []
    found: list[str] = []
    kinds = schema.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "integer" in kinds and not ("minimum" in schema and "maximum" in schema) and "enum" not in schema:
        found.append(where)
    for name, sub in (schema.get("properties") or {}).items():
        found += _unbounded_integers(sub, f"{where}.{name}")
    found += _unbounded_integers(schema.get("items"), f"{where}[]")
    for key in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(schema.get(key) or []):
            found += _unbounded_integers(sub, f"{where}.{key}[{i}]")
    return found


def _coerce(name: str, raw: str, schema: Schema) -> Any:
    """A query or path string → the schema's scalar type, or a 400 naming the parameter."""
    kind = _type_of(schema)
    if _CONTROL.search(raw):
        raise bad_request(f"{name} contains control characters", "bad_param", {"param": name})
    if kind == "integer":
        if not re.fullmatch(r"[+-]?\d{1,19}", raw.strip()):
            raise bad_request(f"{name} must be an integer, got {raw[:40]!r}", "bad_param", {"param": name})
        return int(raw)
    if kind == "number":
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise bad_request(f"{name} must be a number, got {raw[:40]!r}", "bad_param", {"param": name})
        return value
    if kind == "boolean":
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise bad_request(f"{name} must be true or false, got {raw[:40]!r}", "bad_param", {"param": name})
    return raw


def _parse_datetime(name: str, raw: str) -> datetime:
    text = raw.strip()
    # An unencoded '+' in a query string arrives as a space: "2025-01-01T08:00:00 08:00".
    text = re.sub(r" (\d{2}:?\d{2})$", r"+\1", text)
    try:
        parsed = datetime.fromisoformat(text)
        value = parsed.astimezone(UTC) if parsed.tzinfo is not None else None  # naive is ambiguous
    except (ValueError, OverflowError):  # not a date-time, or outside years 1–9999 once in UTC
        value = None
    if value is None:
        raise bad_request(
            f"{name} must be an ISO 8601 date-time with a time zone, e.g. 2025-01-31T08:00:00+08:00 "
            f"(URL-encode '+' as %2B), got {raw[:40]!r}",
            "bad_param",
            {"param": name},
        )
    return value


def _message(error: ValidationError, root: str) -> str:
    where = root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{where.lstrip('.') or 'body'}: {error.message}"


def _is_integer(checker: Any, value: Any) -> bool:
    # JSON Schema counts 1.0 as an integer; the API does not: a float would reach the handler, be
    # stored as 1.0 and echoed back, or fail deep inside a service. Only JSON's own integers are.
    return isinstance(value, int) and not isinstance(value, bool)


# The validator of every route's path, query and body: Draft 2020-12 with strict integers.
StrictValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)

_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _no_control_chars(value: Any, where: str = "body") -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise bad_request(f"{where} contains a NUL character", "invalid_body")
        if _SURROGATE.search(value):  # "\ud800" escapes: not text, and not storable as UTF-8
            raise bad_request(f"{where} contains an unpaired surrogate (\\ud800-\\udfff)", "invalid_body")
    elif isinstance(value, dict):
        for key, item in value.items():
            _no_control_chars(key, where)
            _no_control_chars(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_control_chars(item, f"{where}[{i}]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_response(data: Any, status: int = 200) -> web.Response:
    if status == 204:
        return web.Response(status=204)
    text = json.dumps(data, ensure_ascii=False, default=json_default)
    return web.Response(status=status, text=text, content_type="application/json")


class _Checked:
    """Validators built once per route."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.query = StrictValidator(route.query) if route.query else None
        self.body = StrictValidator(route.body) if route.body else None
        self.path = {name: StrictValidator(s) for name, s in route.path_params.items()}

    def path_values(self, match: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, schema in self.route.path_params.items():
            value = _coerce(name, match[name], schema)
            error = best_match(self.path[name].iter_errors(value))
            if error is not None:
                if schema.get("type") in ("integer", "number"):
                    # An out-of-range id names nothing that exists.
                    raise ApiError(404, "not_found", f"no such {name}: {match[name][:40]}")
                raise bad_request(f"{name}: {error.message}", "bad_param", {"param": name})
            values[name] = _parse_datetime(name, value) if schema.get("format") == "date-time" else value
        return values

    def query_values(self, request: web.Request) -> dict[str, Any]:
        schema = self.route.query or obj({})
        props: Mapping[str, Schema] = schema.get("properties", {})
        values: dict[str, Any] = {}
        for name in request.query:
            if len(request.query.getall(name)) > 1:
                raise bad_request(f"{name} given more than once", "bad_param", {"param": name})
            if name not in props:
                known = ", ".join(sorted(props)) or "none"
                raise bad_request(
                    f"unknown query parameter {name[:40]!r}; this route takes: {known}",
                    "unknown_param",
                    {"param": name[:40], "allowed": sorted(props)},
                )
            values[name] = _coerce(name, request.query[name], props[name])
        if self.query is not None:
            error = best_match(self.query.iter_errors(values))
            if error is not None:
                param = str(error.absolute_path[0]) if error.absolute_path else None
                if error.validator == "required":
                    raise bad_request(error.message, "missing_param")
                raise bad_request(_message(error, ""), "bad_param", {"param": param} if param else None)
        for name, prop in props.items():
            if name in values and prop.get("format") == "date-time":
                values[name] = _parse_datetime(name, values[name])
            elif name not in values and "default" in prop:
                values[name] = prop["default"]
        return values

    async def body_value(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw.strip():
            raise bad_request("a JSON body is required", "missing_body")
        if request.content_type not in ("application/json", "application/octet-stream", ""):
            raise ApiError(415, "unsupported_media_type", "send the body as application/json")
        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except UnicodeDecodeError:
            raise bad_request("the body is not UTF-8", "bad_json") from None
        except RecursionError:
            raise bad_request("the JSON body is nested too deeply", "bad_json") from None
        except ValueError as exc:
            raise bad_request(f"the body is not valid JSON: {exc}", "bad_json") from None
        _no_control_chars(data)
        assert self.body is not None
        error = best_match(self.body.iter_errors(data))
        if error is not None:
            path = list(error.absolute_path)
            raise bad_request(_message(error, "body"), "invalid_body", {"path": path} if path else None)
        return data


class Registry:
    """Routes declared with :meth:`route`, mounted with :meth:`mount`, described by :meth:`openapi`."""

    def __init__(self, title: str = "社区服务助手 API", version: str = "1") -> None:
        self.title = title
        self.version = version
        self.routes: list[Route] = []
        self.schemas: dict[str, Schema] = {"Error": ERROR_SCHEMA}
        self._document: dict[str, Any] | None = None

    def component(self, name: str, schema: Schema) -> Schema:
        """Register a named schema; returns a ``$ref`` to use in routes and other schemas."""
        if name in self.schemas and self.schemas[name] != schema:
            raise ValueError(f"schema {name!r} is already registered differently")
        self.schemas[name] = schema
        self._document = None
        return {"$ref": f"#/components/schemas/{name}"}

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        roles: Iterable[str] = (),
        public: bool = False,
        description: str = "",
        tags: Sequence[str] = (),
        path_params: Mapping[str, Schema] | None = None,
        query: Schema | None = None,
        body: Schema | None = None,
        response: Schema | None = None,
        status: int = 200,
        operation_id: str | None = None,
        refused: str = "",
    ) -> Callable[[Handler], Handler]:
        method = method.upper()
        role_set = frozenset(roles)
        if method not in _METHODS:
            raise ValueError(f"method must be one of {sorted(_METHODS)}")
        if not path.startswith("/") or path.startswith(PREFIX):
            raise ValueError(f"route paths are relative to {PREFIX} and start with '/': {path!r}")
        if public == bool(role_set):
            raise ValueError(f"{method} {path}: give either roles=... or public=True (not both, not neither)")
        unknown = role_set - ALL_ROLES
        if unknown:
            raise ValueError(f"{method} {path}: unknown roles {sorted(unknown)}; known: {sorted(ALL_ROLES)}")
        params = dict(path_params or {})
        names = _PATH_PARAM.findall(path)
        if set(names) != set(params):
            raise ValueError(f"{method} {path}: declare a schema for each path parameter {names} in path_params")
        for schema in params.values():
            _type_of(schema)
        if query is not None:
            if query.get("type") != "object":
                raise ValueError(f"{method} {path}: query must be an object schema (use obj())")
            for schema in query.get("properties", {}).values():
                _type_of(schema)
        if body is not None and method in ("GET", "DELETE"):
            raise ValueError(f"{method} {path}: {method} routes take no body")
        unbounded = [
            *(w for n, sch in params.items() for w in _unbounded_integers(sch, n)),
            *_unbounded_integers(query, "query"),
            *_unbounded_integers(body, "body"),
        ]
        if unbounded:
            raise ValueError(f"{method} {path}: give integers a minimum and a maximum: {', '.join(unbounded)}")
        if any(r.method == method and r.path == path for r in self.routes):
            raise ValueError(f"{method} {path} is declared twice")

        def decorate(handler: Handler) -> Handler:
            self.routes.append(
                Route(
                    method=method,
                    path=path,
                    handler=handler,
                    roles=role_set,
                    public=public,
                    summary=summary,
                    description=description or (handler.__doc__ or "").strip(),
                    tags=tuple(tags),
                    path_params=params,
                    query=query,
                    body=body,
                    response=response,
                    status=status,
                    operation_id=operation_id or handler.__name__,
                    registry=self,
                    refused=refused,
                )
            )
            self._document = None
            return handler

        return decorate

    # Mounting ---------------------------------------------------------------------------------
    def mount(self, app: web.Application, prefix: str = "") -> None:
        """Add every route to ``app`` (a sub-application mounted at :data:`PREFIX`, or ``prefix``)."""
        ids = [r.operation_id for r in self.routes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"operation ids must be unique: {duplicates}")
        for route in self.routes:
            app.router.add_route(route.method, prefix + route.path, self._aiohttp_handler(route))

    @staticmethod
    def _aiohttp_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        checked = _Checked(route)

        async def handle(request: web.Request) -> web.StreamResponse:
            principal = None
            if not route.public:
                principal = await authenticate(request)
                authorize(principal, route.roles, route.refused)
            path = checked.path_values(request.match_info)
            query = checked.query_values(request)
            body = await checked.body_value(request) if route.body is not None else None
            result = await route.handler(Call(request, route, principal, path, query, body))
            if isinstance(result, web.StreamResponse):
                return result
            return json_response(result, route.status)

        handle.api_route = route  # type: ignore[attr-defined]
        handle.__name__ = route.operation_id
        return handle

    # OpenAPI ----------------------------------------------------------------------------------
    def openapi(self) -> dict[str, Any]:
        if self._document is None:
            self._document = self._build_openapi()
        return self._document

    def _build_openapi(self) -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        for route in sorted(self.routes, key=lambda r: (r.path, r.method)):
            paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
        error = {"$ref": "#/components/schemas/Error"}
        responses = {
            name: {"description": text, "content": {"application/json": {"schema": error}}}
            for name, text in (
                ("BadRequest", "Bad input: the error message names the parameter or field and why."),
                ("Unauthorized", "No credentials, or unknown/revoked ones."),
                ("Forbidden", "The caller's role may not do this."),
                ("NotFound", "No such resource."),
                ("UnsupportedMediaType", "The body is not application/json."),
            )
        }
        return {
            "openapi": "3.1.0",
            "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
            "info": {
                "title": self.title,
                "version": self.version,
                "description": (
                    "JSON API of the community service assistant. Authenticate with "
                    "`Authorization: Bearer <token>` (tokens come from `python -m bot token create`). "
                    "Each operation lists the roles that may call it in `x-roles`; `admin` may call all. "
                    "Errors are `{\"error\": {\"code\": ..., \"message\": ...}}`."
                ),
            },
            "servers": [{"url": PREFIX}],
            "security": [{"bearerAuth": []}],
            "tags": [{"name": t} for t in sorted({t for r in self.routes for t in r.tags})],
            "paths": paths,
            "components": {
                "schemas": dict(self.schemas),
                "responses": responses,
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "description": "An API token (`csb_…`) from `python -m bot token create`.",
                    }
                },
            },
        }


def _parameter(name: str, where: str, schema: Schema, required: bool) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "required": required, "schema": schema}
    if "description" in schema:
        param["description"] = schema["description"]
    return param


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
    description = route.description
    if not route.public:
        roles = ", ".join(route.allowed_roles)
        description = f"{description}\n\nRoles: {roles}.".strip()
        if route.refused:
            description += f" Not for other roles: {route.refused}."
    if description:
        op["description"] = description
    if route.tags:
        op["tags"] = list(route.tags)
    op["x-roles"] = route.allowed_roles
    if route.public:
        op["security"] = []
    params = [_parameter(n, "path", s, True) for n, s in route.path_params.items()]
    if route.query:
        required = set(route.query.get("required", ()))
        for name, schema in route.query.get("properties", {}).items():
            params.append(_parameter(name, "query", schema, name in required))
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
    ok: dict[str, Any] = {"description": "Success."}
    if route.response is not None and route.status != 204:
        ok["content"] = {"application/json": {"schema": route.response}}
    responses: dict[str, Any] = {str(route.status): ok}
    if route.query or route.path_params or route.body is not None:
        responses["400"] = {"$ref": "#/components/responses/BadRequest"}
    if not route.public:
        responses["401"] = {"$ref": "#/components/responses/Unauthorized"}
        responses["403"] = {"$ref": "#/components/responses/Forbidden"}
    if route.path_params:
        responses["404"] = {"$ref": "#/components/responses/NotFound"}
    if route.body is not None:
        responses["415"] = {"$ref": "#/components/responses/UnsupportedMediaType"}
    op["responses"] = responses
    return op


def api_route(handler: Any) -> Route | None:
    """The declaration behind a mounted aiohttp handler, or ``None`` for a route added by hand."""
    value = getattr(handler, "api_route", None)
    return value if isinstance(value, Route) else None


# The registry of this service's API: modules in bot.api declare their routes on it.
API = Registry()
route = API.route
component = API.component
