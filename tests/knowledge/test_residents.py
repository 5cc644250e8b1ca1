"""Residents' own wording (issue 13): long stories, elderly and voice-recognised speech, everyday
names, typos; sensitive entries; unanswerable questions still declined.

The questions here are written for these tests, apart from the evaluation sets."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from intents import tokens
from knowledge.base import KnowledgeBase
from knowledge.entries import load_entries
from knowledge.errors import KnowledgeDataError
from knowledge.evaluation import DEFAULT_EVAL_FILE, evaluate, load_questions
from knowledge.text import SYNONYMS_PATH, Analyzer, load_synonyms
from tests.knowledge.conftest import run_kb

EVAL_DIR = DEFAULT_EVAL_FILE.parent
RESIDENTS_DEV = EVAL_DIR / "residents_dev.yml"
RESIDENTS_HELDOUT = EVAL_DIR / "residents_heldout.yml"

LONG = (
    "你好，我是幸福里小区5号楼的住户，姓王，今年七十六了，老伴身体不好常年吃药，儿子在外地上班，"
    "平时家里就我们两个老人，前几天听楼下邻居说现在家里可以签一个社区的医生，定期上门量血压，"
    "我想问一下这个家庭医生怎么签"
)
ANSWERABLE = [
    # long messages: greeting, self-introduction, a story, the request at the end
    (LONG, "family-doctor"),
    (
        "社区的同志你们好，我们家去年从老家搬过来，在这边租房子住，孩子下半年要上幼儿园，幼儿园说要查"
        "预防接种证，可是搬家的时候弄丢了，想问问接种证丢了怎么补",
        "vaccine-certificate",
    ),
    # elderly speech and voice-recognised text (filler, no punctuation, words no entry uses)
    ("那个 俺就是想问问 俺那个老年证 找不着了 咋补啊", "elderly-card-replace"),
    ("你好我想问一下就是低保一年要审核几次", "dibao-review"),
    ("屋里冻死了暖气一点不热找谁", "heating-not-warm"),
    # jieba fragments (我会, 学个) are no topic words
    ("我会修电脑能去社区当志愿者吗", "volunteer-register"),
    # typos below the word level, repaired by sound
    ("高令补贴在哪申请", "elderly-allowance"),
    ("残积证怎么办", "disability-card-apply"),
    ("我想学个电脑 夜效有这课吗", "night-school-intro"),
    # everyday names from the synonym list
    ("农合一年交多少钱", "medical-insurance-resident-pay"),
    ("公维金能修电梯吗", "maintenance-fund"),
    ("暂住证在哪办", "residence-permit-apply"),
    ("家庭大夫能上门吗", "family-doctor"),
    ("老人查体什么时候", "elderly-health-check"),
]


@pytest.mark.parametrize(("text", "expected"), ANSWERABLE, ids=[e for _, e in ANSWERABLE])
def test_residents_wording_gets_the_right_entry(kb: KnowledgeBase, text: str, expected: str) -> None:
    """The reply gives the right entry: the answer, or the first of the choices."""
    answer = kb.answer(text)
    assert answer.kind in ("answer", "choices"), (text, kb.search(text))
    assert answer.hits[0].entry.id == expected


def test_long_and_typo_questions_through_the_cli() -> None:
    for text, expected in [(LONG, "family-doctor"), ("身分证掉了去哪补", "id-card"), ("公维金怎么申请", "maintenance-fund")]:
        res = run_kb("search", text)
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        assert lines[0] in ("decision: answer", "decision: choices"), res.stdout
        offered = next(ln for ln in lines if ln.startswith("offered: "))
        assert offered.removeprefix("offered: ").split(", ")[0] == expected, res.stdout


MISSING_PERSON = [
    "家里老人走丢了社区能帮忙找吗",
    "俺老头子走丢了 咋办啊",
    "我妈出门买菜到现在没回来 找不着人了 怎么办",
    "您好，我爸今年八十了有点糊涂，今天早上出去遛弯到现在还没回来，电话也打不通，全家都急死了，想问问社区能不能帮忙找找",
    "老人走了找不到了",
]


@pytest.mark.parametrize("text", MISSING_PERSON)
def test_missing_person_never_gets_death_procedures(kb: KnowledgeBase, text: str) -> None:
    answer = kb.answer(text)
    offered = [h.entry for h in answer.hits]
    assert not any(e.sensitive for e in offered), (text, [e.id for e in offered])
    assert "proof-death" not in [e.id for e in offered]


def test_death_procedures_answered_when_asked(kb: KnowledgeBase) -> None:
    for text in ["俺家老头子昨个夜里过世了 要办啥手续", "家里老人去世了要办什么手续", "老人的后事办完了还要办啥"]:
        answer = kb.answer(text)
        assert answer.kind in ("answer", "choices") and answer.hits[0].entry.id == "proof-death", text


@pytest.mark.parametrize(
    "text",
    [
        "驾照到期了怎么换证",
        "公积金怎么提取",
        "港澳通行证在哪办",
        "游泳馆周末几点开门",
        "您好，我是幸福里的居民，我在单位交了十来年住房公积金，现在想在这边买套房子，首付还差一些，"
        "想问一下公积金怎么提出来用",
        "俺想坐火车去看闺女 那个火车票咋买啊",
    ],
)
def test_unanswerable_questions_still_declined(kb: KnowledgeBase, text: str) -> None:
    assert kb.answer(text).kind == "unknown", kb.search(text)


def test_sensitive_flag_is_data(tmp_path: Path) -> None:
    entries = {e.id: e for e in load_entries()}
    assert entries["proof-death"].sensitive
    assert not entries["proof-residence"].sensitive
    assert entries["proof-death"].to_dict()["sensitive"] is True
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "entries:\n- id: x-one\n  question: 问题？\n  answer: 答案。\n  department: 窗口\n"
        "  reviewed: 2026-11-20\n  sensitive: maybe\n",
        encoding="utf-8",
    )
    with pytest.raises(KnowledgeDataError, match="sensitive"):
        load_entries(tmp_path)


def test_synonym_list_is_consistent() -> None:
    """Each variant belongs to one canonical form; folding leaves canonical forms whole (群众夜校 is
    not 群众群众夜校 although 夜校 is a variant of it), turns every variant into its canonical form,
    and folding twice changes nothing."""
    raw = yaml.safe_load(SYNONYMS_PATH.read_text(encoding="utf-8"))
    seen: dict[str, str] = {}
    for canonical, variants in raw.items():
        for v in variants:
            assert v not in seen, f"{v} under {seen.get(v)} and {canonical}"
            seen[v] = canonical
    analyzer = Analyzer(load_synonyms())
    for canonical in raw:
        if canonical not in seen:
            assert analyzer.fold(canonical) == tokens.normalize(canonical), canonical
    for variant, canonical in seen.items():
        folded = analyzer.fold(variant)
        assert folded == analyzer.fold(canonical), (variant, folded)
        assert analyzer.fold(folded) == folded, variant


def test_everyday_names_fold_only_where_they_are_words() -> None:
    analyzer = Analyzer(load_synonyms())
    assert analyzer.fold("老人签约家医") == "老人签约家庭医生"
    assert analyzer.fold("国家医保局") == "国家医保局"  # 国家 straddles 家医
    assert analyzer.fold("社区的群众夜校") == "社区的群众夜校"
    assert analyzer.fold("农合一年交多少钱").startswith("城乡居民医保")


def test_eval_file_grouped_by_style(tmp_path: Path) -> None:
    path = tmp_path / "styles.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "elderly": {"heating-not-warm": ["那个暖气啊 不热 咋整"], "none": ["俺想买张火车票"]},
                "typos": {"id-card": ["身分证丢了"]},
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    questions = load_questions(path)
    assert [(q.style, q.expected) for q in questions] == [
        ("elderly", "heating-not-warm"),
        ("elderly", None),
        ("typos", "id-card"),
    ]
    res = run_kb("eval", str(path), "--by-style")
    assert res.returncode == 0, res.stderr
    assert "right entry given" in res.stdout
    table = [ln.split() for ln in res.stdout.splitlines() if ln.split()[:1] in (["elderly"], ["typos"], ["all"])]
    assert [row[:3] for row in table] == [["elderly", "1", "1"], ["typos", "1", "0"], ["all", "2", "1"]]


@pytest.mark.parametrize("path", [RESIDENTS_DEV, RESIDENTS_HELDOUT], ids=["dev", "heldout"])
def test_residents_sets_targets(kb: KnowledgeBase, path: Path) -> None:
    """The issue's targets on the residents' sets: the development set retrieval was tuned on, and the
    held-out set written before any tuning (never tuned on)."""
    questions = load_questions(path)
    assert sum(q.expected is not None for q in questions) >= 150
    assert sum(q.expected is None for q in questions) >= 35
    assert {q.style for q in questions} == {"rambling", "elderly", "synonyms", "voice", "typos"}
    report = evaluate(kb, questions)
    assert report.right_entry >= 0.80
    assert report.false_unknown <= 0.15
    assert report.unknown_recall >= 0.85
    assert report.confident_wrong_rate <= 0.03
    assert report.sensitive_offered == 0
