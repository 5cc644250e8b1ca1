"""The realistic mix (benchmarks/wechat_mix.py) stays a benchmark of conversations that work: a small
run must carry every conversation to the end with the replies it expects. Nothing here is timed; a
flow whose replies change without the mix following makes this fail (and the script exit 1, so no
figure of broken conversations is ever written to docs/benchmarks.md)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_a_small_mix_carries_every_conversation_to_its_end() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "wechat_mix.py"), "--residents", "20", "--rounds", "1", "--no-pin"],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every reply as the conversation expects" in done.stdout, done.stdout[-3000:]


def test_the_mix_knowledge_questions_are_answered_by_their_entry_and_read_as_questions() -> None:
    """Each resident of the mix asks knowledge questions of its own (benchmarks/mix_questions.py).
    Every one a 2,000-resident run asks must be read as a question and answered (not offered as a
    choice) by its entry, with the word its step expects: else the benchmark fails at its end. A
    question that stops being so after a change of the data is replaced in the pool. Read as a
    question means accepted as one: a clarifying question (咨询办事 / 反映问题) where an answer is
    expected fails, even when the intent guessed first is ``query``."""
    from benchmarks import mix_questions
    from intents.engine import IntentEngine
    from knowledge.base import KnowledgeBase

    kb, engine = KnowledgeBase.load(), IntentEngine.load()
    asked = 2000 * 5 // 20  # residents holding the knowledge conversation (weight 5 of every 20)
    wrong, seen = [], set()
    for pool in mix_questions.POOLS:
        assert mix_questions.variants(pool) >= asked
        for n in range(asked):
            text, entry, word = mix_questions.question(pool, n)
            seen.add(text)
            answer, understood = kb.answer(text), engine.classify(text)
            got = answer.hits[0].entry if answer.kind == "answer" else None
            if (understood.intent != "query" or understood.decision != "accept"
                    or got is None or got.id != entry or word not in got.answer):
                wrong.append((pool, text, understood.intent, understood.decision, answer.kind,
                              [h.entry.id for h in answer.hits]))
    assert len(seen) == asked * len(mix_questions.POOLS)  # no message asked twice
    assert not wrong, wrong[:20]
