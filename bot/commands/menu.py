"""``menu``: check, show and push the 公众号's custom menu from a YAML file in the repo.

``python -m bot menu push [--file bot/wechat/menu.yml]`` checks the file against WeChat's rules (at
most 3 top buttons and 5 sub-buttons each, names within WeChat's byte limits, a key or URL where the
button type needs one) and sends it through ``menu/create``. A problem is reported as
``file:line: what is wrong`` with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from bot.config import Settings

if TYPE_CHECKING:
    from bot.wechat.api import WeChatAPI

T = TypeVar("T")

DEFAULT_MENU = Path(__file__).resolve().parent.parent / "wechat" / "menu.yml"

MAX_TOP, MAX_SUB = 3, 5
TOP_NAME_BYTES, SUB_NAME_BYTES = 16, 60
KEY_BYTES, URL_BYTES = 128, 1024
KEY_TYPES = frozenset(
    {"click", "scancode_push", "scancode_waitmsg", "pic_sysphoto", "pic_photo_or_album", "pic_weixin",
     "location_select"}
)
BUTTON_TYPES = KEY_TYPES | {"view", "miniprogram", "media_id", "article_id", "article_view_limited"}
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")

Path_ = tuple[str | int, ...]


class MenuError(Exception):
    """A problem in the menu file; ``str()`` is ``file:line: message``."""


def _lines(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            out[(*path, key)] = key_node.start_mark.line + 1
            _lines(value_node, (*path, key), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)


class _Checker:
    def __init__(self, file: Path, lines: dict[Path_, int]) -> None:
        self.file = file
        self.lines = lines
        self.problems: list[str] = []

    def fail(self, path: Path_, message: str) -> None:
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        line = self.lines.get(probe, 1)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        self.problems.append(f"{self.file}:{line}: {where + ': ' if where else ''}{message}")

    def name(self, button: dict[str, Any], path: Path_, limit: int) -> None:
        name = button.get("name")
        if not isinstance(name, str) or not name.strip():
            self.fail(path, "every button needs a non-empty 'name'")
            return
        size = len(name.encode("utf-8"))
        if size > limit:
            self.fail((*path, "name"), f"name {name!r} is {size} bytes in UTF-8; WeChat allows at most {limit}")

    def action(self, button: dict[str, Any], path: Path_) -> dict[str, Any]:
        kind = button.get("type")
        if kind not in BUTTON_TYPES:
            self.fail((*path, "type") if "type" in button else path,
                      f"type must be one of {', '.join(sorted(BUTTON_TYPES))}, got {kind!r}")
            return button
        if kind in KEY_TYPES:
            key = button.get("key")
            if not isinstance(key, str) or not key:
                self.fail(path, f"a {kind} button needs a 'key'")
            elif not UPPER_SNAKE.fullmatch(key):
                self.fail((*path, "key"), f"key {key!r} must be UPPER_SNAKE_CASE (e.g. MY_TICKETS)")
            elif len(key.encode()) > KEY_BYTES:
                self.fail((*path, "key"), f"key is longer than {KEY_BYTES} bytes")
        if kind in ("view", "miniprogram"):
            url = button.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                self.fail((*path, "url") if "url" in button else path, f"a {kind} button needs an http(s) 'url'")
            elif len(url.encode()) > URL_BYTES:
                self.fail((*path, "url"), f"url is longer than {URL_BYTES} bytes")
        if kind == "miniprogram":
            for field in ("appid", "pagepath"):
                if not isinstance(button.get(field), str) or not button.get(field):
                    self.fail(path, f"a miniprogram button needs '{field}'")
        if kind == "media_id" and not button.get("media_id"):
            self.fail(path, "a media_id button needs 'media_id'")
        if kind in ("article_id", "article_view_limited") and not button.get("article_id"):
            self.fail(path, f"a {kind} button needs 'article_id'")
        return button

    def menu(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or "button" not in data:
            self.fail((), "the file must be a mapping with a 'button' list")
            return {}
        buttons = data["button"]
        if not isinstance(buttons, list) or not buttons:
            self.fail(("button",), "'button' must be a non-empty list")
            return {}
        if len(buttons) > MAX_TOP:
            self.fail(("button", MAX_TOP), f"{len(buttons)} top buttons; WeChat allows at most {MAX_TOP}")
        out: list[dict[str, Any]] = []
        for i, button in enumerate(buttons):
            path: Path_ = ("button", i)
            if not isinstance(button, dict):
                self.fail(path, "a button must be a mapping with 'name' and 'type' or 'sub_button'")
                continue
            self.name(button, path, TOP_NAME_BYTES)
            subs = button.get("sub_button")
            if subs is None:
                out.append(self.action(button, path))
                continue
            if not isinstance(subs, list) or not subs:
                self.fail((*path, "sub_button"), "'sub_button' must be a non-empty list")
                continue
            if len(subs) > MAX_SUB:
                self.fail((*path, "sub_button", MAX_SUB),
                          f"{len(subs)} sub-buttons; WeChat allows at most {MAX_SUB}")
            for j, sub in enumerate(subs):
                sub_path: Path_ = (*path, "sub_button", j)
                if not isinstance(sub, dict):
                    self.fail(sub_path, "a sub-button must be a mapping with 'name' and 'type'")
                    continue
                if "sub_button" in sub:
                    self.fail(sub_path, "WeChat menus have only two levels")
                self.name(sub, sub_path, SUB_NAME_BYTES)
                self.action(sub, sub_path)
            out.append({"name": button.get("name"), "sub_button": subs})
        return {"button": out}


def load_menu(file: Path) -> dict[str, Any]:
    """Read and check a menu file; returns the ``menu/create`` body or raises :class:`MenuError`."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MenuError(f"{file}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MenuError(f"{file}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark is not None else "1"
        problem = getattr(exc, "problem", None) or str(exc)
        raise MenuError(f"{file}:{line}: not valid YAML: {problem}") from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _lines(node, (), lines)
    checker = _Checker(file, lines)
    menu = checker.menu(data)
    if checker.problems:
        raise MenuError("\n".join(checker.problems))
    return menu


async def _with_api(action: Callable[[WeChatAPI], Awaitable[T]]) -> T | None:
    """Run ``action`` with an API client on the shared token store; prints the error and returns
    ``None`` when WeChat or the database fails."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.storage.db import Database
    from bot.storage.migrate import upgrade
    from bot.wechat.api import WeChatAPI
    from bot.wechat.errors import WeChatAPIError, WeChatUnavailable
    from bot.wechat.tokens import make_token_store

    settings = Settings.from_env()
    db = None if settings.redis_url else Database(settings.database_url)
    try:
        if db is not None:
            await upgrade(db)
        store = make_token_store(settings, db)
        try:
            async with WeChatAPI(settings, token_store=store) as api:
                return await action(api)
        finally:
            await store.close()
    except WeChatAPIError as exc:
        print(f"WeChat refused: errcode {exc.errcode} {exc.errmsg}", file=sys.stderr)
    except WeChatUnavailable as exc:
        print(f"WeChat API unreachable at {settings.wechat_api_base}: {exc}", file=sys.stderr)
    except (SQLAlchemyError, OSError) as exc:
        print(f"database error ({settings.database_url.split('://')[0]}): {type(exc).__name__}: "
              f"{str(exc).splitlines()[0]}", file=sys.stderr)
    finally:
        if db is not None:
            await db.dispose()
    return None


async def _push(file: Path) -> int:
    menu = load_menu(file)

    async def push(api: WeChatAPI) -> bool:
        await api.create_menu(menu)
        return True

    if await _with_api(push) is None:
        return 1
    count = sum(len(b.get("sub_button") or [b]) for b in menu["button"])
    print(f"menu pushed from {file}: {len(menu['button'])} top buttons, {count} actions")
    return 0


async def _show_remote() -> int:
    data = await _with_api(lambda api: api.get_menu())
    if data is None:
        return 1
    print(json.dumps(data.get("menu", data), ensure_ascii=False, indent=2))
    return 0


def _run(args: argparse.Namespace) -> Any:
    file = Path(args.file)
    try:
        if args.menu_command == "push":
            return _push(file)
        if args.menu_command == "show" and args.remote:
            return _show_remote()
        menu = load_menu(file)
    except MenuError as exc:
        print(f"menu error:\n{exc}", file=sys.stderr)
        return 2
    if args.menu_command == "show":
        print(json.dumps(menu, ensure_ascii=False, indent=2))
    else:
        print(f"{file}: ok")
    return 0


async def _guard(args: argparse.Namespace) -> int:
    try:
        result = _run(args)
        if isinstance(result, int):
            return result
        return int(await result)
    except MenuError as exc:
        print(f"menu error:\n{exc}", file=sys.stderr)
        return 2


def register(sub: argparse._SubParsersAction, data_dir: Path) -> None:
    parser = sub.add_parser("menu", help="check, show and push the 公众号 custom menu")
    menu_sub = parser.add_subparsers(dest="menu_command", metavar="<action>")
    menu_sub.required = True
    for name, help_text in (
        ("push", "check the menu file and create the menu through WeChat's API"),
        ("show", "print the checked menu file as WeChat's JSON (or, with --remote, WeChat's current menu)"),
        ("check", "only check the menu file"),
    ):
        p = menu_sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--file", default=str(DEFAULT_MENU), help=f"menu YAML file (default: {DEFAULT_MENU})")
        if name == "show":
            p.add_argument("--remote", action="store_true", help="show the menu WeChat currently has")
        p.set_defaults(func=_guard)
