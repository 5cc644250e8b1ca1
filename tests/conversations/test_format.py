"""The conversation scripts themselves: enough of them, in residents' styles, covering the issue's
points; and a mistake in a script is reported with its file, conversation and step."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conversations import script


def test_enough_conversations_in_every_style() -> None:
    conversations = script.load()
    assert len(conversations) >= 120, len(conversations)
    styles = {c.style for c in conversations}
    assert {"colloquial", "dialect", "voice", "elderly", "typos"} <= styles, styles
    covered = {c for conv in conversations for c in conv.covers}
    needed = {"emergency", "follow-up", "slot", "cancel", "office-hours", "duplicate", "status", "points",
              "push", "handoff", "complaint", "coupon", "course", "query"}
    assert needed <= covered, needed - covered
    ids = [c.id for c in conversations]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("conversations: []", "expected 'conversations:'"),
        ("conversations:\n  - name: x\n    steps: [{say: hi, shout: x}]", "unknown keys ['shout']"),
        ("conversations:\n  - name: x\n    steps: [{say: hi, image: true}]", "exactly one of"),
        ("conversations:\n  - name: x\n    steps: [{say: hi, expect: {contain: a}}]", "expect keys"),
        ("conversations:\n  - name: x\n    style: shouting\n    steps: [{say: hi}]", "style must be one of"),
        ("conversations:\n  - name: x\n    steps: [{wait: soon}]", "wait is a duration"),
        ("conversations:\n  - steps: [{say: hi}]", "needs a name"),
    ],
)
def test_script_mistakes_name_file_and_step(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(script.ScriptError) as info:
        script.load([path])
    assert message in str(info.value) and "mine.yml" in str(info.value)


def test_reply_checks_fail_on_a_missing_fact() -> None:
    script.check_reply("t", "请立即拨打急救电话120。\n已登记 GD20261123-0001", {
        "first_line": ["120"], "order": ["120", "/GD\\d{8}"], "not_contains": ["96333"],
        "lines_before": {"pattern": "GD", "max": 1}, "max_lines": 2})
    for expect in ({"contains": ["119"]}, {"not_contains": ["120"]}, {"order": ["GD", "120"]},
                   {"first_line": ["GD"]}, {"max_lines": 1}, {"lines_before": {"pattern": "GD", "max": 0}},
                   {"any": ["119", "110"]}, {"regex": "GD\\d{9}"}, {"empty": True}):
        with pytest.raises(AssertionError):
            script.check_reply("t", "请立即拨打急救电话120。\n已登记 GD20261123-0001", expect)
