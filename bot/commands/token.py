"""``python -m bot token create|list|revoke``: API tokens for the JSON API.

``create --name N --role ROLE`` prints the new token once (only its SHA-256 hash is stored); a
merchant's token names its merchant (``--role merchant --merchant ID``), which it may verify for; a
staff token's scope is a department (``--department D``) or the console user it is issued for
(``--user NAME``: their role, department and name), as staff see tickets in the console; ``list``
shows id, name, role, scope, prefix, creation, last use and revocation; ``revoke ID|PREFIX`` revokes.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from bot.api.tokens import (
    ROLE_HELP,
    ROLES,
    TokenError,
    create_merchant_token,
    create_token,
    create_user_token,
    list_tokens,
    revoke_token,
)
from bot.clock import Clock
from bot.config import Settings
from bot.storage.db import Database


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    roles = "; ".join(f"{r}: {h}" for r, h in ROLE_HELP.items())
    p = sub.add_parser("token", help="API tokens for the JSON API (create, list, revoke)")
    tsub = p.add_subparsers(dest="token_command", metavar="<action>", required=True)
    create = tsub.add_parser(
        "create",
        help="create a token and print it once",
        description=f"Create an API token. Roles: {roles}.",
    )
    create.add_argument("--name", help="who or what uses the token (e.g. 'console', 'Li Hua'); with --user, "
                        "default the user's name")
    create.add_argument("--role", choices=ROLES, help="what the token may do (with --user: the user's role)")
    create.add_argument("--department", metavar="D",
                        help="with --role staff: the department whose tickets the token sees (with those "
                             "assigned to its name), as staff of D see them in the console")
    create.add_argument("--user", metavar="NAME",
                        help="issue the token for this console user: it acts with their role, department and "
                             "name, and is refused once the user is disabled")
    create.add_argument(
        "--merchant",
        type=int,
        metavar="ID",
        help="with --role merchant (required there): the merchant whose coupons the token may verify",
    )
    create.set_defaults(func=_create)
    lst = tsub.add_parser("list", help="list tokens (never their secrets)")
    lst.add_argument("--active", action="store_true", help="leave out revoked tokens")
    lst.set_defaults(func=_list)
    revoke = tsub.add_parser("revoke", help="revoke a token by id or prefix")
    revoke.add_argument("token", metavar="ID|PREFIX", help="the id or prefix `token list` shows")
    revoke.set_defaults(func=_revoke)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "-"


def _database_problem(exc: Exception) -> int:
    text = str(exc).splitlines()[0][:200] if str(exc) else ""
    print(f"cannot use the database: {type(exc).__name__}: {text}", file=sys.stderr)
    if "api_tokens" in str(exc) or "no such table" in str(exc) or "does not exist" in str(exc):
        print("is the schema up to date? run: python -m bot db upgrade", file=sys.stderr)
    return 1


MERCHANT_USAGE = "python -m bot token create --role merchant --merchant ID --name NAME"


async def _create(args: argparse.Namespace) -> int:
    if args.user is None and (args.role is None or args.name is None):
        print("token error: give --name and --role (or --user NAME to issue a token for a console user):\n"
              "  python -m bot token create --name NAME --role ROLE [--department D]", file=sys.stderr)
        return 2
    if args.user is not None and args.merchant is not None:
        print(f"token error: --merchant goes with --role merchant, not --user: {MERCHANT_USAGE}", file=sys.stderr)
        return 2
    if args.role == "merchant" and args.merchant is None:
        print(
            "token error: a merchant token belongs to one merchant; give its id with --merchant:\n"
            f"  {MERCHANT_USAGE}\n"
            "(merchant ids: GET /api/v1/merchants; a supervisor can also create the account with "
            "POST /api/v1/merchants/ID/accounts)",
            file=sys.stderr,
        )
        return 2
    if args.merchant is not None and args.role != "merchant":
        print(f"token error: --merchant goes with --role merchant only: {MERCHANT_USAGE}", file=sys.stderr)
        return 2
    db = Database(Settings.from_env().database_url)
    try:
        if args.user is not None:
            secret, info = await create_user_token(db, args.user, Clock().now(), name=args.name, role=args.role,
                                                   department=args.department)
        elif args.merchant is not None:
            secret, info = await create_merchant_token(db, args.name, args.merchant, Clock().now())
        else:
            secret, info = await create_token(db, args.name, args.role, Clock().now(), department=args.department)
    except TokenError as exc:
        print(f"token error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        return _database_problem(exc)
    finally:
        await db.dispose()
    linked = f", merchant {args.merchant}" if args.merchant is not None else ""
    linked += f", for user {info.user}" if info.user else ""
    linked += f", scope: {info.scope()}" if info.scope() != "-" else ""
    print(f"created token {info.id} ({info.name!r}, role {info.role}{linked}, prefix {info.prefix})")
    if info.role == "staff" and not info.department:
        print("note: a staff token without a department sees only the tickets assigned to its name; "
              "give --department D (or --user NAME) for a department's tickets", file=sys.stderr)
    print("copy it now; it is not stored and will not be shown again:")
    print(secret)
    return 0


async def _list(args: argparse.Namespace) -> int:
    db = Database(Settings.from_env().database_url)
    try:
        tokens = await list_tokens(db, include_revoked=not args.active)
    except Exception as exc:
        return _database_problem(exc)
    finally:
        await db.dispose()
    if not tokens:
        print("no tokens; create one with: python -m bot token create --name NAME --role ROLE")
        return 0
    rows = [("ID", "NAME", "ROLE", "SCOPE", "PREFIX", "CREATED", "LAST USED", "REVOKED")]
    for t in tokens:
        scope = t.scope() + (f" (user {t.user})" if t.user else "")
        rows.append((str(t.id), t.name, t.role, scope, t.prefix, _when(t.created_at), _when(t.last_used_at),
                     _when(t.revoked_at)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


async def _revoke(args: argparse.Namespace) -> int:
    db = Database(Settings.from_env().database_url)
    try:
        info, revoked = await revoke_token(db, args.token, Clock().now())
    except TokenError as exc:
        print(f"token error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        return _database_problem(exc)
    finally:
        await db.dispose()
    if revoked:
        print(f"revoked token {info.id} ({info.name!r}, role {info.role}, prefix {info.prefix})")
    else:
        print(f"token {info.id} ({info.name!r}) was already revoked at {_when(info.revoked_at)}")
    return 0
