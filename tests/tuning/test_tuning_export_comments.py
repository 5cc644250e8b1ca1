"""The tuning loop's export writes the YAML files back with people's comments kept: an intent file
with an example added and one removed and a synonym added, a knowledge file with an entry changed,
one deleted and a new one, on copies of the project's own data files."""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import yaml

from bot.services.tuning_data import Sources, apply, export, write_export
from intents.dataset import PACKAGE_DATA_DIR
from intents.registry import load_registry
from knowledge.entries import DEFAULT_ENTRIES_DIR, load_file


def comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


def test_export_keeps_comments(tmp_path: Path) -> None:
    intents_dir, knowledge_dir = tmp_path / "intents", tmp_path / "knowledge"
    shutil.copytree(PACKAGE_DATA_DIR, intents_dir)
    shutil.copytree(DEFAULT_ENTRIES_DIR, knowledge_dir)
    complaint = intents_dir / "complaint.yml"
    before = complaint.read_text(encoding="utf-8")
    doc = yaml.safe_load(before)
    assert len(comments(before)) > 5  # the header and the hand-written sections' titles
    kfile = knowledge_dir / "assistance.yml"
    ktext = "# 低保与救助：民政窗口核对过的答复\n" + kfile.read_text(encoding="utf-8").replace(
        "  - id: dibao-apply\n", "  # 申请流程以民政部门为准\n  - id: dibao-apply\n")
    kfile.write_text(ktext, encoding="utf-8")
    entries = load_file(kfile)
    changed = {**entries[2].to_dict(), "answer": "低保每年复核一次，家庭情况有变化请及时到社区服务中心报告。"}
    new = {"id": "dibao-new-tuning", "question": "低保证丢了怎么补办？", "answer": "请带身份证到社区服务中心申请补办。",
           "department": "社区民政服务窗口"}

    known = load_registry(PACKAGE_DATA_DIR).names
    overlay: dict = {}
    for change in (
        {"op": "example", "intent": "complaint", "text": "楼下烧烤店半夜还在营业，油烟太大", "add": True},
        {"op": "example", "intent": "complaint", "text": doc["examples"][3], "add": False},
        {"op": "synonym", "intent": "complaint", "canonical": "报修", "word": "包修", "add": True},
        {"op": "entry", "entry": changed},
        {"op": "entry_delete", "id": entries[4].id},
        {"op": "entry", "entry": new},
    ):
        overlay = apply(overlay, change, known)
    sources = Sources.of(intents_dir, knowledge_dir)
    files = export(overlay, sources)
    write_export(files, sources)

    after = complaint.read_text(encoding="utf-8")
    assert comments(after) == comments(before)
    edited = yaml.safe_load(after)
    assert edited["examples"] == [*(e for i, e in enumerate(doc["examples"]) if i != 3), "楼下烧烤店半夜还在营业，油烟太大"]
    assert edited["synonyms"]["报修"] == [*doc["synonyms"]["报修"], "包修"]
    assert {k: v for k, v in edited.items() if k not in ("examples", "synonyms")} == \
        {k: v for k, v in doc.items() if k not in ("examples", "synonyms")}
    # Every other line is as it was (nothing refolded, requoted or reindented).
    diff = [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]
    assert sorted(diff) == sorted([f"- - {doc['examples'][3]}", "+   - 包修", "+ - 楼下烧烤店半夜还在营业，油烟太大"])
    kafter = kfile.read_text(encoding="utf-8")
    assert comments(kafter) == comments(ktext)
    written = {e.id: e for e in load_file(kfile)}
    assert entries[4].id not in written and "dibao-new-tuning" not in written  # new entries go to tuning.yml
    assert written[entries[2].id].answer == changed["answer"]
    assert written[entries[0].id].to_dict() == entries[0].to_dict()
    assert "defaults:" in kafter and "alternatives: [" in kafter  # the file's own layout stays
