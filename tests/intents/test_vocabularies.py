"""The intent engine and the knowledge base each cut text with their own jieba vocabulary.

Both teach jieba words of their own (course and merchant names; the knowledge base's synonyms). With
one shared tokenizer, a model served next to the other package cut messages differently from the
same model trained and measured alone: in the service, 厨余垃圾放哪里 read as out of scope. Each
side is computed in a fresh process, alone and with the other package loaded after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "厨余垃圾放哪里", "旧沙发怎么扔", "社保卡丢了怎么补办", "我想报名花艺课", "楼道灯坏了好几天了一直没人修",
    "物业办公室在哪里", "地下车库漏水找谁", "中医养生课怎么报名", "小区门口能停车吗", "软笔书法在哪上课",
]

SCRIPT = """
import json, sys
from intents.engine import IntentEngine
from knowledge.base import KnowledgeBase
texts = json.loads(sys.argv[2])
order = sys.argv[1].split(",")
loaded = {}
for name in order:
    loaded[name] = IntentEngine.load() if name == "intents" else KnowledgeBase.load()
out = {}
if "intents" in loaded:
    out["intents"] = {t: loaded["intents"].probabilities(t) for t in texts}
if "knowledge" in loaded:
    out["knowledge"] = {t: [[h.entry.id, round(h.score, 9)] for h in loaded["knowledge"].search(t, k=3)]
                        for t in texts}
print(json.dumps(out, ensure_ascii=False))
"""


def _run(order: str) -> dict[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, order, json.dumps(TEXTS, ensure_ascii=False)],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=True,
    )
    result: dict[str, dict[str, object]] = json.loads(done.stdout)
    return result


def test_intents_classify_the_same_with_the_knowledge_base_loaded_after_them() -> None:
    alone = _run("intents")["intents"]
    beside = _run("intents,knowledge")["intents"]
    assert beside == alone


def test_knowledge_ranks_the_same_with_the_intent_engine_loaded_after_it() -> None:
    alone = _run("knowledge")["knowledge"]
    beside = _run("knowledge,intents")["knowledge"]
    assert beside == alone
