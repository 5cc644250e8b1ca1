"""Text analysis for retrieval: normalisation, colloquial synonyms, word tokens and character n-grams.

Word tokens come from the shared jieba tokenizer (``intents.tokens``). Before cutting, colloquial
and regional variants are folded to one form (咋→怎么, 俺→我, 电瓶车→电动车 …) using
``knowledge/data/synonyms.yml``, so residents' wording meets the entries' wording.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from intents import tokens
from knowledge.errors import KnowledgeDataError

SYNONYMS_PATH = Path(__file__).parent / "data" / "synonyms.yml"

# Function words and politeness that carry no topic. Kept short on purpose: words such as
# 哪里/多少/时间 distinguish questions ("where" vs "how much") and stay in.
STOPWORDS = frozenset(
    """
    的 了 吗 呢 啊 吧 呀 哦 嘛 哈 啦 么 嗯 哎 诶 喔 噢 哟 呗
    我 你 您 他 她 它 我们 你们 他们 咱们 自己 家里 我家 大家
    请问 请 问 问下 问一下 问问 一下 下 想 想问 想要 要 需要 能 能不能 可以 可不可以 会 该 应该
    是 是不是 有 有没有 没有 在 和 跟 与 及 或 或者 还 还是 也 都 就 才 又 再 很 太 挺 比较
    这 那 这个 那个 这些 那些 这样 那样 一个 个 些 点 一点 儿 给 被 把 让 对 从 到 向 往 为 为了
    怎么 怎么样 怎样 如何 什么 啥 咋 么样 干啥 干什么 为啥 为什么 谁 知道 告诉 谢谢 麻烦 您好 你好 好 老师
    同志 社区 现在 今天 一般 可能 具体 情况 事 事情 东西 办法 问题 关于
    """.split()
)

# Words that shape a question ("how / where / what do I need to apply for …") but say nothing of
# its topic. They stay in the BM25 features, but are left out of the topic words a confident answer
# must cover and of the fuzzy comparison, so that "房产证怎么办理" does not match "残疾证怎么办理"
# on its sentence frame. Words naming a sub-case (补办, 丢, 过期, 发放) are topic words on purpose.
FRAME_WORDS = frozenset(
    """
    办 办理 办理手续 申请 申办 手续 流程 程序 步骤 材料 资料 证件 条件 要求 标准 规定
    哪 哪里 哪儿 哪个 哪些 在哪 去哪 上哪 到哪 地方 地点 位置 找谁 找 去 来 上 弄 整 搞 做 行 行不行 不行
    怎么办 咋办 怎么弄 多少 多久 多长时间 几 几点 时候 什么时候 时间 能否 是否 不 没 吗 得 用 用不用
    带 准备 交 领 开 拿 提交 手机 网上 帮 帮忙 帮助 处理 解决 办法 途径 方式 方法 有 能 可以
    """.split()
)

# Single characters that jieba sometimes glues onto a topic word (在哪办 → 证在 + 哪办).
FRAME_CHARS = "哪能要让这那想在去来把给又还也就都"

# jieba part-of-speech tags of words that never name a topic: time, numerals, pronouns,
# localisers, adverbs, measure words, prepositions, conjunctions, particles, interjections.
_FUNCTION_TAGS = frozenset({"t", "m", "mq", "r", "f", "d", "df", "q", "p", "c", "u", "uj", "ul", "y", "e", "o", "k"})
# A word this frequent in general Chinese (jieba's dictionary counts) is not a topic by itself.
_COMMON_FREQ = 5000

_PUNCT_CATEGORIES = ("P", "S", "Z", "C")
_SPLIT_RE = re.compile(r"[\s\W_]+", re.UNICODE)


def _is_noise(token: str) -> bool:
    return all(unicodedata.category(ch)[0] in _PUNCT_CATEGORIES for ch in token)


def load_synonyms(path: Path = SYNONYMS_PATH) -> dict[str, str]:
    """``variant → canonical`` from a YAML mapping ``canonical: [variant, ...]``."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise KnowledgeDataError(path, f"invalid YAML: {exc}", mark.line + 1 if mark else None) from None
    except OSError as exc:
        raise KnowledgeDataError(path, f"cannot read file: {exc.strerror or exc}") from None
    if not isinstance(raw, dict):
        raise KnowledgeDataError(path, "expected a mapping 'canonical: [variants]'")
    out: dict[str, str] = {}
    for canonical, variants in raw.items():
        if not isinstance(variants, list):
            raise KnowledgeDataError(path, f"variants of {canonical!r} must be a list")
        for variant in variants:
            out[tokens.normalize(str(variant))] = tokens.normalize(str(canonical))
    return out


@lru_cache(maxsize=1)
def _word_tags() -> Mapping[str, str]:
    import jieba.posseg

    tags: Mapping[str, str] = jieba.posseg.POSTokenizer(tokens.tokenizer()).word_tag_tab
    return tags


def topic_weight(word: str) -> float:
    """How likely a word the entries never use names a topic (驾照, 护照: 1) rather than being
    colloquial filler (今年, 好几年, 每个: low), from jieba's dictionary tags and frequencies."""
    tag = _word_tags().get(word)
    freq = tokens.tokenizer().FREQ.get(word)
    if tag is None and not freq:
        return 0.5  # coined by jieba's HMM: as often a glued fragment as a real name
    if (tag and tag in _FUNCTION_TAGS) or (freq or 0) >= _COMMON_FREQ:
        return 0.2
    return 1.0


@dataclass(frozen=True)
class Analysis:
    """What retrieval needs from one text."""

    text: str  # normalised, synonyms folded, no punctuation or spaces
    words: tuple[str, ...]  # content words (stopwords removed)
    grams: tuple[str, ...]  # character bigrams of the content words joined
    topic: tuple[str, ...] = ()  # content words without frame words (what the question is about)


class Analyzer:
    """Turns text into :class:`Analysis`; one instance per index (synonyms are fixed at build)."""

    def __init__(self, synonyms: Mapping[str, str] | None = None, extra_words: Iterable[str] = ()) -> None:
        self.synonyms = dict(synonyms or {})
        variants = sorted(self.synonyms, key=len, reverse=True)
        self._synonym_re = re.compile("|".join(map(re.escape, variants))) if variants else None
        words = {w for w in (*self.synonyms.values(), *extra_words) if len(w) > 1}
        if words:
            tokens.add_words(sorted(words))

    def fold(self, text: str) -> str:
        """Normalise width/case/space and replace colloquial variants by their canonical form."""
        text = tokens.normalize(text)
        if self._synonym_re is not None:
            text = self._synonym_re.sub(lambda m: self.synonyms[m.group(0)], text)
        return text

    def analyse(self, text: str) -> Analysis:
        folded = self.fold(text)
        words = [t for t in tokens.cut(folded) if not _is_noise(t)]
        content = [t for t in words if t not in STOPWORDS]
        joined = "".join(content)
        grams = [joined[i : i + 2] for i in range(len(joined) - 1)] or ([joined] if joined else [])
        topic = tuple(t for t in content if t not in FRAME_WORDS)
        return Analysis(
            text="".join(_SPLIT_RE.split(folded)), words=tuple(content), grams=tuple(grams), topic=topic
        )
