"""Who is calling the API, and may they call this route.

Callers are :class:`Principal` objects produced by *authenticators*: functions that look at the
request and return a principal, return ``None`` ("not my kind of credential"), or raise a 401 for a
credential of their kind that is wrong. The API application keeps its list under
:data:`AUTHENTICATORS`; bearer tokens come first, and a later issue adds console login sessions by
appending its own function (``app[API_APP][AUTHENTICATORS].append(session_login)``).

Roles: ``admin`` may do everything; every other role may call only the routes that name it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from bot.api.errors import forbidden, unauthorized
from bot.api.tokens import ROLES, find_active, looks_like_token, touch
from bot.appkeys import RUNTIME

log = logging.getLogger("bot.api.auth")

ADMIN = "admin"
ALL_ROLES: frozenset[str] = frozenset(ROLES)
# Roles that work with residents and their conversations (admin is implied everywhere).
STAFF_ROLES: frozenset[str] = frozenset({"supervisor", "staff", "operator"})


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: ``kind`` is ``token`` (later also ``session``)."""

    kind: str
    id: int
    name: str
    role: str
    merchant_id: int | None = None  # a console merchant account's merchant (tokens: merchant_accounts)
    department: str | None = None  # a staff token's scope: its department (bot/api/tokens.py)
    user: str | None = None  # the console user a token was issued for

    def may(self, roles: Iterable[str]) -> bool:
        return self.role == ADMIN or self.role in set(roles)

    @property
    def handler(self) -> str:
        """The name it handles tickets as (the assignee when it accepts one)."""
        return self.user or self.name

    @property
    def sees_all_tickets(self) -> bool:
        """Supervisors and admins see every ticket; staff their department's and their own, as in
        the console."""
        return self.role in (ADMIN, "supervisor")


Authenticator = Callable[[web.Request], Awaitable[Principal | None]]
AUTHENTICATORS = web.AppKey("api_authenticators", list[Authenticator])


async def bearer_token(request: web.Request) -> Principal | None:
    """``Authorization: Bearer csb_…`` → the token's principal; a wrong token is a 401."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise unauthorized("the Authorization header must be 'Bearer <token>'", "bad_authorization")
    if not looks_like_token(value) or len(value) > 200:
        raise unauthorized("this is not an API token", "invalid_token")
    rt = request.config_dict[RUNTIME]
    info = await find_active(rt.db, value)
    if info is None:
        raise unauthorized("unknown or revoked API token", "invalid_token")
    await touch(rt.db, info, rt.clock.now())
    return Principal("token", info.id, info.name, info.role, department=info.department, user=info.user)


async def authenticate(request: web.Request) -> Principal:
    for authenticator in request.config_dict[AUTHENTICATORS]:
        principal = await authenticator(request)
        if principal is not None:
            return principal
    raise unauthorized("authentication required: send 'Authorization: Bearer <token>'")


def authorize(principal: Principal, roles: frozenset[str], refused: str = "") -> None:
    """A 403 unless the principal's role is one of ``roles`` (or admin). ``refused``: why the route is
    not for other roles, said in the error's message (its ``details`` name the role and the allowed)."""
    if principal.role not in ALL_ROLES:
        raise forbidden(f"the role {principal.role!r} is not known to this server")
    if not principal.may(roles):
        allowed = sorted({ADMIN, *roles})
        log.info("refused %s %s#%s (role %s)", principal.kind, principal.name, principal.id, principal.role)
        why = f": {refused}" if refused else ""
        raise forbidden(f"the role {principal.role!r} may not do this{why}; allowed: {', '.join(allowed)}",
                        details={"role": principal.role, "allowed": allowed})
