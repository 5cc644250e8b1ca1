from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from knowledge.base import KnowledgeBase
from knowledge.errors import KnowledgeDataError

EXTRA = """\
entries:
  - id: test-extra-topic
    question: 社区的图书角什么时候开放？
    alternatives: [图书角开放时间, 社区借书]
    answer: 图书角开放时间以社区服务中心公布为准。
    tags: [图书角]
    department: 社区服务中心综合窗口
    reviewed: 2026-11-20
"""


def test_reload_picks_up_new_entries(entries_copy: Path) -> None:
    kb = KnowledgeBase.load(entries_copy)
    before = len(kb)
    (entries_copy / "extra.yml").write_text(EXTRA, encoding="utf-8")
    kb.reload()
    assert len(kb) == before + 1
    assert kb.search("图书角几点开门")[0].entry.id == "test-extra-topic"


def test_an_answer_given_before_a_reload_is_not_served_after_it(entries_copy: Path) -> None:
    """Decisions are kept per question text; a reload starts afresh (no answer of the old content)."""
    kb = KnowledgeBase.load(entries_copy)
    first = kb.answer("社区图书角几点开放")
    assert first.kind == kb.answer("社区图书角几点开放").kind  # the kept decision
    assert not first.hits or first.hits[0].entry.id != "test-extra-topic"
    kept = kb.answer("咋开居住证明")
    kept.hits.clear()  # the caller's own list: the kept decision is untouched
    assert kb.answer("咋开居住证明").hits[0].entry.id == "proof-residence"
    (entries_copy / "extra.yml").write_text(EXTRA, encoding="utf-8")
    kb.reload()
    after = kb.answer("社区图书角几点开放")
    assert after.kind == "answer" and after.hits[0].entry.id == "test-extra-topic"


@pytest.mark.parametrize(
    ("content", "line", "needle"),
    [
        ("entries:\n  - id: broken\n    question: [unclosed\n", 3, "invalid YAML"),
        (EXTRA.replace("    answer: 图书角开放时间以社区服务中心公布为准。\n", ""), 2, "answer"),
        (EXTRA.replace("test-extra-topic", "proof-residence"), 2, "duplicate id"),
        (EXTRA.replace("reviewed: 2026-11-20", "reviewed: yesterday"), 2, "reviewed"),
    ],
)
def test_malformed_file_names_file_and_old_index_keeps_serving(
    entries_copy: Path, content: str, line: int, needle: str
) -> None:
    kb = KnowledgeBase.load(entries_copy)
    before = len(kb)
    bad = entries_copy / "zz-bad.yml"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(KnowledgeDataError) as info:
        kb.reload()
    assert info.value.path == bad
    assert "zz-bad.yml" in str(info.value)
    assert needle in str(info.value)
    assert info.value.line is not None and info.value.line >= line - 1
    assert len(kb) == before
    assert kb.answer("咋开居住证明").hits[0].entry.id == "proof-residence"


def test_reload_under_concurrent_searches(entries_copy: Path) -> None:
    kb = KnowledgeBase.load(entries_copy)
    errors: list[BaseException] = []
    seen_sizes: set[int] = set()
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                hits = kb.search("怎么开居住证明", k=3)
                assert hits and hits[0].entry.id == "proof-residence"
                seen_sizes.add(len(kb))
                kb.answer("图书角几点开门")
                # Both are answered from memory between reloads, all in Python: without a pause the
                # four searchers would leave the reloading thread little of the interpreter's lock.
                time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    extra = entries_copy / "extra.yml"
    try:
        for i in range(6):
            if i % 2 == 0:
                extra.write_text(EXTRA, encoding="utf-8")
            else:
                extra.unlink()
            kb.reload()
            bad = entries_copy / "zz-bad.yml"
            bad.write_text("entries: [", encoding="utf-8")
            with pytest.raises(KnowledgeDataError):
                kb.reload()
            bad.unlink()
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert seen_sizes  # searches ran while reloading
