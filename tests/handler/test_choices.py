"""The page words residents say at a list (one list for the mall, 查进度 and a list shown whole)."""

from __future__ import annotations

import pytest

from bot.handler.choices import is_page_word


@pytest.mark.parametrize(
    "text", ["下一页", "下页", "更多", "更多的吧", "还有吗？", "还有呢", "后面的呢", "继续", "还有没有", "再往下翻", "下一页。"]
)
def test_page_words(text: str) -> None:
    assert is_page_word(text)


@pytest.mark.parametrize(
    "text", ["", "还有个事", "后面有人乱停车", "更多积分怎么赚", "继续报", "下一个", "1", "还有两个灯不亮"]
)
def test_not_page_words(text: str) -> None:
    assert not is_page_word(text)
