"""Text analysis for retrieval: normalisation, everyday names, word tokens and character n-grams.

Word tokens come from the shared jieba tokenizer (``intents.tokens``). Before cutting, colloquial,
regional and everyday names are folded to the entries' words (咋→怎么, 俺→我, 农合→城乡居民医保,
暂住证→居住证 …) using ``knowledge/data/synonyms.yml``, so residents' wording meets the entries'
wording. A variant is replaced only where it stands as a word: when a longer word of general Chinese
straddles its edge (国家医保 for 家医, 正在 for 身份正), it is left alone.

A question is analysed as a message (:meth:`Analyzer.analyse_query`): typos repaired against the
knowledge base's words (``knowledge.typos``), reduced to its request (``knowledge.question``), and
its topic words marked as in the request (focus) or in the story around it.
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
from knowledge.memo import Memo, TextMemo
from knowledge.question import reduce_message, without_circumstances
from knowledge.typos import Lexicon

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
    就是 那么 这么 然后 反正 其实 已经 一直 还有 而且 但是 可是 因为 所以 如果 的话 时候 之前 以后
    个人 有人 别人 人家 这种 那种 这边 那边 这儿 那儿 这里 那里
    俺 咱 呗 哈 嘞 咧 噻 撒
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
    不能 能用 不到 找不到 怎么回事 回事 咋回事 管不管 行吗 可不可以 能不能 应该 该 需不需要 要不要
    出来 起来 下来 上来 上去 下去 过来 进来 进去 回来 回去
    """.split()
)

# Single characters that jieba sometimes glues onto a topic word (在哪办 → 证在 + 哪办).
FRAME_CHARS = "哪能要让这那想在去来把给又还也就都得"

# jieba part-of-speech tags of words that never name a topic: time, numerals, pronouns,
# localisers, adverbs, measure words, prepositions, conjunctions, particles, interjections.
_FUNCTION_TAGS = frozenset({"t", "m", "mq", "r", "f", "d", "df", "q", "p", "c", "u", "uj", "ul", "y", "e", "o", "k"})
# A word this frequent in general Chinese (jieba's dictionary counts) is not a topic by itself.
_COMMON_FREQ = 5000

# Two-character pieces that jieba cuts but that name nothing: a pronoun with a verb (我会, 我要) or a
# verb with a measure word or particle (学个, 装个, 问下). They are never topic words.
_FRAGMENT_FIRST = frozenset("我你他她它俺咱您")
_FRAGMENT_LAST = frozenset("个下些点了着过吧呢啊呀嘛")

# A word of general Chinese this frequent (jieba's counts) straddling a synonym variant's edge means
# the variant is not a word there (国家 in 国家医保 for 家医).
_STRADDLE_FREQ = 1000

_PUNCT_CATEGORIES = ("P", "S", "Z", "C")
_SPLIT_RE = re.compile(r"[\s\W_]+", re.UNICODE)


def _is_noise(token: str) -> bool:
    return all(unicodedata.category(ch)[0] in _PUNCT_CATEGORIES for ch in token)


def is_fragment(token: str) -> bool:
    """A jieba piece that names nothing (我会, 学个, 装个)."""
    return len(token) == 2 and (token[0] in _FRAGMENT_FIRST or token[1] in _FRAGMENT_LAST)


# jieba's dictionary holds some glued pieces with tiny counts (又坏了: 3); below this they are split.
_GLUED_FREQ = 20


def split_glued(token: str) -> list[str]:
    """A word jieba's HMM coined from a topic word and a frame character (哪办, 能领, 费在, 养狗要) in
    its pieces: 哪 + 办, 能 + 领, 费 + 在. Dictionary words (哪里, 能力, 现在) stay whole. A frame
    verb with a measure word (办个, 开个, 领个) keeps its verb: 我想办个老年证 asks how to get one."""
    if len(token) == 2 and token[0] in FRAME_WORDS and token[1] in "个些":
        if tokens.tokenizer(tokens.KNOWLEDGE).FREQ.get(token, 0) < _GLUED_FREQ:
            return [token[0], token[1]]
    if len(token) > 2 and token[-1] in "点些" and tokens.tokenizer(tokens.KNOWLEDGE).FREQ.get(token, 0) < _GLUED_FREQ:
        return [token[:-1], token[-1]]  # "a bit of" glued on: 给救助点 → 救助 + 点, 补贴点 → 补贴 + 点
    if len(token) < 2 or (token[0] not in FRAME_CHARS and token[-1] not in FRAME_CHARS):
        return [token]
    freq = tokens.tokenizer(tokens.KNOWLEDGE).FREQ
    if freq.get(token, 0) >= _GLUED_FREQ:
        return [token]
    head = [ch for ch in token[:1] if ch in FRAME_CHARS]
    tail = [ch for ch in token[-1:] if ch in FRAME_CHARS and len(token) - len(head) > 1]
    core = token[len(head) : len(token) - len(tail)]
    # A core that is no dictionary word either loses a trailing 了 (坏了 of 又坏了: 坏).
    if len(core) > 1 and core[-1] == "了" and not freq.get(core):
        return [*head, core[:-1], "了", *tail]
    return [*head, *([core] if core else []), *tail]


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

    tags: Mapping[str, str] = jieba.posseg.POSTokenizer(tokens.tokenizer(tokens.KNOWLEDGE)).word_tag_tab
    return tags


# Last characters of names of things (证件, 卡, 费, 车, 房 …): a word ending so names a thing, whatever
# jieba's tag says (驾照 is tagged a verb, 超市 too).
_THING_SUFFIX = frozenset("证照卡费金票车房局站所院馆场店市机表单书本税险款库厅室园校网码箱柜桩梯灯线管")
# Last characters of names of places (医院, 银行, 超市, 车站, 学校).
_PLACE_SUFFIX = frozenset("院局站所馆场店市厅室园校行")
# jieba tags of names: nouns of every kind, abbreviations, English.
_NAME_TAGS = frozenset({"n", "nr", "nr1", "nr2", "nrj", "nrf", "ns", "nsf", "nt", "nz", "nl", "ng", "j", "vn", "eng", "l"})


def names_thing(word: str) -> bool:
    """Whether a word ends like the name of a thing one applies for or goes to (驾照, 公积金, 游泳馆)."""
    return len(word) > 1 and word[-1] in _THING_SUFFIX


def is_function_word(word: str) -> bool:
    """A word of time, number, place-in-relation or manner (晚上, 今年, 一次, 以后): no topic."""
    tag = _word_tags().get(word)
    return bool(tag) and tag in _FUNCTION_TAGS


# People and the body a resident tells about (俺老伴, 俺闺女, 俺腿脚不好, 公家给钱): who is asking or for
# whom, not what about. When the entries never use such a word it weighs as little as a function
# word; an entry that does use it (孩子, 老人, 邻居) keeps its weight.
STORY_WORDS = frozenset(
    """
    老伴 老伴儿 老头 老头子 老太 老太太 老汉 老婆 老婆子 老婆儿 老公 媳妇 媳妇儿 婆姨 丈夫 爱人 对象 男人 女人
    儿子 闺女 女儿 姑娘 小子 孙子 孙女 外孙 外孙子 外孙女 外甥 侄子 侄女 儿媳 儿媳妇 女婿 娃子 后生
    爸 妈 爸爸 妈妈 父亲 母亲 爹 娘 老爹 老娘 老爷子 公公 婆婆 岳父 岳母 丈母娘 老丈人 爷爷 奶奶 姥姥 姥爷
    外公 外婆 哥 姐 哥哥 姐姐 弟弟 妹妹 兄弟 姐妹 亲戚 朋友 同事 家人 家里人 一家人 老两口 两口子 自个 自个儿
    腿脚 腿 脚 腰 眼睛 眼神 耳朵 身子 身子骨 脑子 手脚 公家 国家 政府 上面 上头 人家 街坊
    毛病 老毛病 病根 不利索 股子 厨房 屋里 屋子 客厅 卧室 炕 炕上 院子 院里 家门口
    厂子 厂里 工厂 车间 工地 老家 村里 城里 乡下 楼上 楼下 对门 隔壁 胳膊 老胳膊 老腿 胳膊腿 手 牙
    """.split()
)
# Where the resident lives (三号楼, 十二楼, 2单元, 5层): the story's place, no topic.
_ADDRESS_RE = re.compile(r"^[\d一二三四五六七八九十两百]+(?:号楼|号院|楼|栋|幢|层|单元|号)$")


# How long something has been so (好长时间, 好几天, 半个月, 老半天) and that nobody sees to it (没人修,
# 没人管): the story of a complaint, no topic, whatever jieba's tag says (好长时间 is tagged a noun).
_DURATION_RE = re.compile(
    r"^(?!几)(?:(?:好|老|挺|这么|那么|大|半|[一两几十]+|好几|好多|好些)+(?:个多?|多个?)?(?:长时间|时间|久|天|年|月|周|星期|礼拜|阵子?)"
    r"|长时间)$"
)
_NOBODY_RE = re.compile(r"^没人[\u4e00-\u9fff]$")


def topic_weight(word: str) -> float:
    """How likely a word the entries never use names a topic (驾照, 护照, 公积金: 1) rather than
    telling the story around it (冻死, 找不着, 黑乎乎: low) or being filler (今年, 好几年, 每个: low),
    from jieba's dictionary tags and frequencies and the word's last character."""
    if word in STORY_WORDS or _ADDRESS_RE.match(word) or _DURATION_RE.match(word):
        return 0.1
    if _NOBODY_RE.match(word):
        return 0.2
    tag = _word_tags().get(word)
    freq = tokens.tokenizer(tokens.KNOWLEDGE).FREQ.get(word)
    thing = len(word) > 1 and word[-1] in _THING_SUFFIX
    if tag is None and not freq:
        return 0.8 if thing else 0.3  # coined by jieba's HMM: as often a glued fragment as a real name
    if tag and tag in _FUNCTION_TAGS:
        return 0.1
    name = thing or tag in _NAME_TAGS
    if (freq or 0) >= _COMMON_FREQ:  # 公司, 医院 still name a thing; 东西, 今年 do not
        if not name:
            return 0.1
        # A common place (医院, 银行, 超市) is as often where the story happens as what is asked
        # about; a common thing the entries never name (公司, 财产) is what 怎么注册公司 asks about.
        return 0.6 if word[-1] in _PLACE_SUFFIX else 0.8
    if name:
        return 1.0
    return 0.2  # verbs, adjectives, descriptive words: how things are, not what they are


@dataclass(frozen=True)
class Analysis:
    """What retrieval needs from one text."""

    text: str  # normalised, synonyms folded, no punctuation or spaces
    words: tuple[str, ...]  # content words (stopwords removed)
    grams: tuple[str, ...]  # character bigrams of the content words joined
    topic: tuple[str, ...] = ()  # content words without frame words (what the question is about)
    focus: frozenset[str] = frozenset()  # topic words said in the request itself (questions only)
    focus_text: str = ""  # the request, as ``text`` (questions only; empty: the whole text)


# Heads of names that residents often join to their modifier with 的 (未婚的证明, 高龄的补贴, 老年的
#证): a synonym variant or canonical form ending so also matches with that 的.
_DE_HEADS = ("证明", "补贴", "补助", "津贴", "证", "卡", "费")


def _variant_pattern(variant: str) -> str:
    for head in _DE_HEADS:
        if variant.endswith(head) and len(variant) - len(head) >= 2 and variant[-len(head) - 1] != "的":
            return re.escape(variant[: -len(head)]) + "的?" + re.escape(head)
    return re.escape(variant)


def _alternation(variants: list[str]) -> str:
    """One regular expression matching the first of ``variants`` (in their order) that matches at a
    position, as ``"|".join`` of their patterns would, but with the alternatives grouped by their first
    character (高(?:龄补贴|领补贴|…)|低(?:…)): at each position only one group is tried, not all the
    alternatives one by one (3× faster on a list of ~900). Alternatives with different first
    characters never match at the same position, so which one matches does not change."""
    groups: dict[str, list[str]] = {}
    for variant in variants:
        groups.setdefault(variant[0], []).append(variant)
    out = []
    for first, group in groups.items():
        head = re.escape(first)
        rests = []
        for variant in group:
            pattern = _variant_pattern(variant)
            rests.append(pattern[len(head) :])  # every pattern starts with its first character as is
        out.append(head + ("(?:" + "|".join(rests) + ")" if rests != [""] else ""))
    return "|".join(out)


FOLDS_KEPT = 256  # texts whose folded form an analyser keeps (see Analyzer.fold)
ANALYSES_KEPT = 2048  # reduced questions whose analysis an analyser keeps (see Analyzer.analyse_query)


def _without_de(found: str, *known: Mapping[str, str]) -> str:
    """The variant or canonical form a match with an inserted 的 stands for."""
    for i, ch in enumerate(found):
        if ch == "的":
            plain = found[:i] + found[i + 1 :]
            if any(plain in k for k in known):
                return plain
    return found


def _names_nothing(word: str) -> bool:
    """Whether jieba's dictionary cuts ``word`` into words that carry no topic (什么时候: 什么 + 时候)."""
    pieces = tokens.cut(word, normalized=True, hmm=False, vocabulary=tokens.KNOWLEDGE)
    return len(pieces) > 1 and all(p in STOPWORDS or p in FRAME_WORDS for p in pieces)


# An age of eighty or more, as old people say it (八十五了, 九十岁, 八十往上, 88岁): what 高龄 means.
# Not an amount (八十块) nor a part of a longer number (一百八十).
_OLD_AGE_RE = re.compile(
    r"(?<![高龄\d零一二三四五六七八九十百千])(?:[八九]十[一二三四五六七八九]?(?=岁|了|多|往上|以上|出头|好几)|[89]\d(?=岁))"
)


# A spouse or parent who "went" or "is no more" (俺老伴上个月走了, 俺娘前年没了, 俺爹不在了): how old
# people say someone died. Only where 走了/没了/不在了 ends the clause right after the person, and
# never in a message that says the person is missing or not back
# (走丢, 找不到, 没回来): a missing parent never gets death procedures.
_KIN = "老人|老伴儿?|老头子?|老太太?|老婆子?|老公|丈夫|爱人|老爹|老娘|爹|娘|爸爸?|妈妈?|父亲|母亲|爷爷|奶奶|姥姥|姥爷|公公|婆婆|老爷子"
_PASSED_RE = re.compile(
    rf"({_KIN})((?:上个月|上月|前几天|前些天|前段时间|去年|前年|今年|年初|年前|刚刚?|才|已经|前天|昨天|上周|上礼拜|上星期|上个礼拜|上个星期)*)"
    r"(?:走了|没了|不在了)(?=$|[\s，。,.!！？?;；])"
)
_NOT_DEAD_RE = re.compile(r"走丢|走失|丢了|找不[到着]|没回来|没回家|不回来|回来|失踪|联系不上|打不通|离家出走")


def _passed_away(text: str) -> str:
    """走了/没了/不在了 after a spouse or parent, at a clause's end, said as 去世了 (not when the person is
    missing)."""
    if ("走了" not in text and "没了" not in text and "不在了" not in text) or _NOT_DEAD_RE.search(text):
        return text
    return _PASSED_RE.sub(r"\1\2去世了", text)


class Analyzer:
    """Turns text into :class:`Analysis`; one instance per index (synonyms are fixed at build)."""

    def __init__(self, synonyms: Mapping[str, str] | None = None, extra_words: Iterable[str] = ()) -> None:
        self.synonyms = dict(synonyms or {})
        # Canonical forms are matched too (and kept), so that a variant inside one is left alone:
        # 群众夜校 stays, 夜校 alone becomes 群众夜校.
        self._keep = {c: c for c in self.synonyms.values() if c not in self.synonyms}
        variants = sorted({*self.synonyms, *self._keep}, key=len, reverse=True)
        self._synonym_re = re.compile(_alternation(variants)) if variants else None
        # Recent texts' folded forms: a decision folds its question more than once (the search, the
        # exact-phrasing check, the opening-hours check). Folding depends on jieba's word counts
        # (a variant's edges), so a change of the vocabulary starts afresh.
        self._folds = TextMemo(FOLDS_KEPT)
        # Recent reduced questions' analyses (see analyse_query).
        self._reduced: Memo[tuple[str, int], Analysis] = Memo(ANALYSES_KEPT)
        # Canonical names are kept whole by the knowledge base's own jieba vocabulary (城乡居民医保); a
        # canonical form of words that name nothing (什么时候) is not added, so it stays two frame words.
        words = {w for w in (*self.synonyms.values(), *extra_words) if len(w) > 1 and not _names_nothing(w)}
        if words:
            tokens.add_words(sorted(words), tokens.KNOWLEDGE)

    def _replace(self, m: re.Match[str]) -> str:
        variant, text = m.group(0), m.string
        if variant in self._keep:
            return variant
        if variant not in self.synonyms:  # said with 的 before its head: 未婚的证明
            variant = _without_de(variant, self.synonyms, self._keep)
            if variant in self._keep:
                return variant
        i, j = m.start(), m.end()
        freq = tokens.tokenizer(tokens.KNOWLEDGE).FREQ
        # A word of general Chinese straddling an edge of the variant: the variant is not a word here.
        for a in range(max(0, i - 3), j):
            for b in range(max(a + 2, i + 1), min(len(text), a + 4) + 1):
                crosses = (a < i < b < j) or (i < a < j < b)
                if crosses and freq.get(text[a:b], 0) >= _STRADDLE_FREQ:
                    return variant
        return self.synonyms[variant]

    def fold(self, text: str) -> str:
        """Normalise width/case/space and replace colloquial variants by their canonical form; an age
        of eighty or more is said to be 高龄 (俺娘八十五了 → 俺娘高龄八十五了)."""
        return self._folds.get(text, self._fold)

    def _fold(self, text: str) -> str:
        text = tokens.normalize(text)
        if self._synonym_re is not None:
            text = self._synonym_re.sub(self._replace, text)
        return _passed_away(_OLD_AGE_RE.sub(r"高龄\g<0>", text))

    def _cut(self, folded: str) -> tuple[list[str], list[str]]:
        words = [p for t in tokens.cut(folded, vocabulary=tokens.KNOWLEDGE) if not _is_noise(t) for p in split_glued(t)]
        content = [t for t in words if t not in STOPWORDS and not is_fragment(t)]
        return content, [t for t in content if t not in FRAME_WORDS]

    @staticmethod
    def _grams(content: list[str]) -> tuple[str, ...]:
        joined = "".join(content)
        return tuple([joined[i : i + 2] for i in range(len(joined) - 1)] or ([joined] if joined else []))

    def analyse(self, text: str) -> Analysis:
        folded = self.fold(text)
        content, topic = self._cut(folded)
        return Analysis(
            text="".join(_SPLIT_RE.split(folded)),
            words=tuple(content),
            grams=self._grams(content),
            topic=tuple(topic),
        )

    @staticmethod
    def _take(token: str, in_focus: bool, content: list[str], topic: list[str], focus: set[str]) -> None:
        content.append(token)
        if token not in FRAME_WORDS and not _DURATION_RE.match(token) and not _NOBODY_RE.match(token):
            topic.append(token)
            if in_focus:
                focus.add(token)

    def _named(self, clause: str, lexicon: Lexicon) -> list[str]:
        """The things the knowledge base knows that ``clause`` names (社保卡, 低保, 轮椅), in order."""
        out = []
        for word in tokens.cut(clause, vocabulary=tokens.KNOWLEDGE):
            if len(word) < 2 or word not in lexicon.words or word in STORY_WORDS or word in FRAME_WORDS:
                continue
            if is_function_word(word):
                continue
            tag = _word_tags().get(word)
            if names_thing(word) or tag is None or tag in _NAME_TAGS or word in self._keep:
                out.append(word)
        return out

    def without_circumstances(self, text: str, lexicon: Lexicon) -> str | None:
        """The request of ``text`` without the clauses that only tell the resident's circumstances
        (see ``knowledge.question.without_circumstances``); None when it has none."""
        folded = self.fold(text)
        repaired = lexicon.correct(lexicon.join_split(folded))
        if repaired != folded:
            folded = self.fold(repaired)
        return without_circumstances(folded, lambda clause: self._named(clause, lexicon))

    def analyse_query(self, text: str, lexicon: Lexicon | None = None) -> Analysis:
        """A resident's message: typos repaired, reduced to its request, topic words of the request
        marked (``focus``)."""
        folded = self.fold(text)
        if lexicon is not None:
            repaired = lexicon.correct(lexicon.join_split(folded))
            if repaired != folded:
                folded = self.fold(repaired)
        reduced = reduce_message(folded, None if lexicon is None else lambda clause: self._named(clause, lexicon))
        # Everything after the reduction depends on the reduced text and where its request starts:
        # questions that differ only in what the reduction drops (请问, 您好, 谢谢, punctuation) are
        # cut once.
        joined = reduced.text
        focus_at = len(joined) - len(reduced.focus) if reduced.focus else len(joined)
        return self._reduced.get((joined, focus_at), self._analyse_reduced)

    @classmethod
    def _analyse_reduced(cls, reduced: tuple[str, int]) -> Analysis:
        """The analysis of a reduced question: its clauses joined by spaces, the request from the
        offset ``focus_at`` on."""
        # One cut of the clauses joined by spaces (jieba never joins across a space); the focus
        # clauses come last, so a token is in the focus when it starts at or after their offset.
        joined, focus_at = reduced
        content: list[str] = []
        topic: list[str] = []
        focus: set[str] = set()
        at = 0
        for piece in tokens.tokenizer(tokens.KNOWLEDGE).cut(joined):
            start = at
            at += len(piece)
            for token in split_glued(piece):
                if _is_noise(token) or token in STOPWORDS or is_fragment(token):
                    continue
                cls._take(token, start >= focus_at, content, topic, focus)
        whole = "".join(_SPLIT_RE.split(joined))
        focus_text = "".join(_SPLIT_RE.split(joined[focus_at:]))
        return Analysis(
            text=whole,
            words=tuple(content),
            grams=cls._grams(content),
            topic=tuple(topic),
            focus=frozenset(focus),
            focus_text="" if focus_text == whole else focus_text,
        )
