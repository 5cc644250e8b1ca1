"""The direction of dependencies (docs/architecture.md), read from the source with ``ast``:

- flows talk to services only: no SQLAlchemy, no ``bot.storage``, no WeChat edge, and no
  database sessions or transactions of their own;
- services never import the WeChat edge, the flows or the layers above them;
- ``intents`` and ``knowledge`` never import ``bot``.

Every import counts, one inside a function too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLOWS = sorted((REPO / "bot" / "flows").rglob("*.py"))
SERVICES = sorted((REPO / "bot" / "services").rglob("*.py"))
LANGUAGE = sorted([*(REPO / "intents").rglob("*.py"), *(REPO / "knowledge").rglob("*.py")])

FLOW_FORBIDDEN = ("sqlalchemy", "bot.storage", "bot.wechat")
SERVICE_FORBIDDEN = ("bot.wechat", "bot.flows", "bot.handler", "bot.web", "bot.api")
LANGUAGE_FORBIDDEN = ("bot",)
# What opens a session or a transaction on ``Database`` (rt.db.session(), db.transaction() …).
DATABASE_CALLS = ("session", "transaction", "run_sync_transaction")


def _package(path: Path) -> str:
    """The package relative imports in ``path`` start from (for ``__init__.py`` too: its own)."""
    return ".".join(path.relative_to(REPO).parts[:-1])


def imports(path: Path, source: str | None = None) -> Iterator[tuple[int, str]]:
    """(line, module) for every module ``path`` imports (``source``: its text, if not read from
    ``path``); ``from a import b`` yields ``a`` and ``a.b``, relative imports are resolved."""
    text = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = _package(path).split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join([*base, module] if module else base)
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _within(module: str, packages: tuple[str, ...]) -> str | None:
    return next((p for p in packages if module == p or module.startswith(p + ".")), None)


def violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in paths:
        for line, module in imports(path):
            package = _within(module, forbidden)
            if package is not None:
                found.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return sorted(set(found))


def database_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.relative_to(REPO)}:{node.lineno} calls .{node.func.attr}()"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in DATABASE_CALLS
    ]


def test_the_layers_are_found() -> None:
    assert len(FLOWS) > 10 and len(SERVICES) > 10 and len(LANGUAGE) > 10
    assert any(p.name == "complaint.py" for p in FLOWS)


def test_flows_use_services_not_the_database_or_wechat() -> None:
    found = violations(FLOWS, FLOW_FORBIDDEN)
    assert not found, "\n".join(found)


def test_flows_open_no_sessions_or_transactions() -> None:
    found = [call for path in FLOWS for call in database_calls(path)]
    assert not found, "\n".join(found)


def test_services_never_import_wechat_flows_or_the_layers_above() -> None:
    found = violations(SERVICES, SERVICE_FORBIDDEN)
    assert not found, "\n".join(found)


def test_intents_and_knowledge_never_import_bot() -> None:
    found = violations(LANGUAGE, LANGUAGE_FORBIDDEN)
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("source", "seen"),
    [
        ("import sqlalchemy as sa\n", "sqlalchemy"),
        ("from sqlalchemy.orm import Session\n", "sqlalchemy.orm"),
        ("from bot import storage\n", "bot.storage"),
        ("def f():\n    from bot.storage.models import Ticket\n", "bot.storage.models"),
        ("from ..storage import db\n", "bot.storage"),
        ("import bot.wechat.media\n", "bot.wechat.media"),
    ],
)
def test_every_form_of_import_is_seen(source: str, seen: str) -> None:
    probe = REPO / "bot" / "flows" / "probe.py"  # not written: only its place matters (relative imports)
    found = [module for _, module in imports(probe, source)]
    assert seen in found
    assert any(_within(module, FLOW_FORBIDDEN) for module in found)
    assert not any(_within(m, FLOW_FORBIDDEN) for _, m in imports(probe, "from bot.services import coupons\n"))
