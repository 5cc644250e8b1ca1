"""Topic words (intents/data/routing/topics.yml): a complaint that names a topic's word gets that topic's
feature, so a word an operator's tickets never use is routed with its topic's commoner words; the model
file keeps the words it was trained with."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from intents.features import extract_many
from intents.routing import DEFAULT_TOPICS, ROUTING_FEATURES, ROUTING_MODEL, Router, TopicWords, topics_pay

REPO = Path(__file__).resolve().parents[2]
TICKETS = {
    "交通": ["公交车晚点", "出租车拒载", "地铁太挤", "高速收费站堵车", "公交站牌不清楚", "长途客车超载"],
    "医疗": ["医院排队太久", "医生态度差", "疫苗缺货", "挂号太难", "护士打针很疼", "卫生院没有药"],
    "教育": ["学校食堂太贵", "老师体罚学生", "幼儿园入学难", "校车不安全", "中考成绩有误", "学生作业太多"],
}
# Words the tickets above never use, not even one of their characters: 磁浮, 艾滋病, 辅导班.
MESSAGES = {"磁浮票价涨了": "交通", "艾滋病检测": "医疗", "辅导班乱开": "教育"}


def _tickets() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, titles in TICKETS.items():
        for i, title in enumerate(titles * 3):
            texts.append(f"{title}{i}")
            labels.append(label)
    return texts, labels


def _run(args: list[str], data_dir: Path, stdin: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOT_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


@pytest.mark.timeout(300)
def test_topic_words_route_words_the_tickets_lack(tmp_path: Path) -> None:
    texts, labels = _tickets()
    plain = Router.train(texts, labels, topics=False)
    assert [r.category for r in plain.route_many(list(MESSAGES))] != list(MESSAGES.values())
    f = tmp_path / "tickets.csv"
    with f.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["标题", "部门"])
        w.writerows(zip(texts, labels, strict=True))
    model = tmp_path / "routing.npz"
    r = _run(["routing", "train", str(f), "--text-column", "标题", "--label-column", "部门", "--out", str(model)],
             tmp_path, "")
    assert r.returncode == 0, r.stderr
    r = _run(["routing", "predict", "--model", str(model)], tmp_path, "\n".join(MESSAGES) + "\n")
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["category"] for line in r.stdout.splitlines()] == list(MESSAGES.values())


def test_topic_words_file_is_well_formed() -> None:
    topics = TopicWords.load(DEFAULT_TOPICS)
    assert len({t for ts in topics.words.values() for t in ts}) == 7
    assert len(topics.words) > 1000
    for word, names in topics.words.items():
        assert len(word) >= 2 and not re.search(r"\d", word), word  # digits are folded to 0 in features
        assert len(names) <= 2, word
    assert topics.features(["w公交", "c磁浮", "c浮", "b公交_站"]) == ["t交通出行"]


def _synthetic(helpful: bool) -> tuple[list[list[str]], list[str], TopicWords]:
    """Tickets each naming one made-up word of their own, labels at random: only topic words that follow
    the labels can tell the held-out rows apart; one topic for every word tells nothing."""
    rng = random.Random(5)
    words = [a + b for a in "甲乙丙丁戊己庚辛壬癸" for b in "子丑寅卯辰巳午未申酉戌亥"]
    labels = [rng.choice("AB") for _ in words]
    topics = [label if helpful else "A" for label in labels]
    texts = [f"关于{w}的问题" for w in words]
    return extract_many(texts, ROUTING_FEATURES), labels, TopicWords({w: (t,) for w, t in zip(words, topics, strict=True)})


@pytest.mark.parametrize("helpful", [True, False])
def test_topic_words_are_kept_only_when_they_pay_out_of_fold(helpful: bool) -> None:
    docs, labels, topics = _synthetic(helpful)
    assert topics_pay(docs, labels, replace(ROUTING_MODEL, min_df=1), ROUTING_FEATURES, topics) is helpful
