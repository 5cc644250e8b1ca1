"""``python -m bot user add|passwd|disable|list``: console accounts.

``add NAME --role ROLE [--department D] [--merchant ID]`` asks for the password twice (or reads one
line from standard input with ``--password-stdin``); ``passwd NAME`` sets a new one and ends the
user's sessions; ``disable NAME`` stops the user logging in and ends their sessions now.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from bot.clock import Clock
from bot.config import Settings
from bot.services import accounts
from bot.storage.db import Database


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    p = sub.add_parser("user", help="console accounts (add, passwd, disable, list)")
    usub = p.add_subparsers(dest="user_command", metavar="<action>", required=True)
    add = usub.add_parser("add", help="add a console user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=accounts.ROLES)
    add.add_argument("--department", help="staff: the department whose tickets they handle")
    add.add_argument("--merchant", type=int, metavar="ID", help="merchant accounts: the merchant's id")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(func=_add)
    pw = usub.add_parser("passwd", help="set a user's password (ends their sessions)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw.set_defaults(func=_passwd)
    dis = usub.add_parser("disable", help="stop a user logging in (ends their sessions)")
    dis.add_argument("name")
    dis.set_defaults(func=_disable)
    lst = usub.add_parser("list", help="list console users")
    lst.set_defaults(func=_list)


def _password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        print("error: the passwords differ", file=sys.stderr)
        return None
    return first


async def _run(work: object) -> int:
    from bot.storage.migrate import upgrade

    db = Database(Settings.from_env().database_url)
    try:
        await upgrade(db)
        await work(db)  # type: ignore[operator]
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"database error: {exc}", file=sys.stderr)
        return 2
    finally:
        await db.dispose()
    return 0


async def _add(args: argparse.Namespace) -> int:
    password = _password(args)
    if password is None:
        return 2

    async def work(db: Database) -> None:
        user = await accounts.add_user(db, args.name, args.role, password, Clock().now(),
                                       department=args.department, merchant_id=args.merchant)
        print(f"added {user.name} ({user.role}){' of ' + user.department if user.department else ''}")

    return await _run(work)


async def _passwd(args: argparse.Namespace) -> int:
    password = _password(args)
    if password is None:
        return 2

    async def work(db: Database) -> None:
        await accounts.set_password(db, args.name, password, Clock().now())
        print(f"password of {args.name} changed; their sessions ended")

    return await _run(work)


async def _disable(args: argparse.Namespace) -> int:
    async def work(db: Database) -> None:
        await accounts.disable(db, args.name, Clock().now())
        print(f"{args.name} disabled; their sessions ended")

    return await _run(work)


async def _list(args: argparse.Namespace) -> int:
    async def work(db: Database) -> None:
        for u in await accounts.list_users(db):
            state = "disabled" if u.disabled_at else "active"
            extra = u.department or (f"merchant {u.merchant_id}" if u.merchant_id else "")
            print(f"{u.id}\t{u.name}\t{u.role}\t{extra}\t{state}")

    return await _run(work)
