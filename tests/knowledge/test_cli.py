from __future__ import annotations

import csv
import json
from pathlib import Path

import yaml
from openpyxl import Workbook, load_workbook

from knowledge.entries import load_entries
from tests.knowledge.conftest import run_kb


def test_search_prints_ranked_entries_with_scores() -> None:
    res = run_kb("search", "俺想问下咋开居住证明", "-k", "2")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "decision: answer"
    assert lines[1].startswith("1. ") and "proof-residence" in lines[1]
    assert len([ln for ln in lines if ln[:2] in ("1.", "2.", "3.")]) == 2


def test_search_rejects_bad_k() -> None:
    res = run_kb("search", "低保", "-k", "0")
    assert res.returncode == 2
    assert "-k" in res.stderr and "Traceback" not in res.stderr


def test_eval_prints_and_writes_json(tmp_path: Path) -> None:
    questions = tmp_path / "q.yml"
    questions.write_text(
        yaml.safe_dump({"proof-residence": ["咋开个住址证明"], "none": ["明天天气咋样"]}, allow_unicode=True),
        encoding="utf-8",
    )
    out = tmp_path / "report.json"
    res = run_kb("eval", str(questions), "--json", str(out))
    assert res.returncode == 0, res.stderr
    assert "top-1 accuracy" in res.stdout and "recall@3" in res.stdout and "MRR" in res.stdout
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["answerable"] == 1 and report["unanswerable"] == 1
    assert report["top1"] == 1.0
    assert report["unknown_recall"] == 1.0 and report["unknown_precision"] == 1.0


def test_eval_csv_and_bad_file(tmp_path: Path) -> None:
    good = tmp_path / "q.csv"
    good.write_text("question,expected\n暖气不热咋办,heating-not-warm\n讲个笑话,none\n", encoding="utf-8")
    res = run_kb("eval", str(good))
    assert res.returncode == 0, res.stderr
    assert "questions: 1 answerable, 1 without answer" in res.stdout
    bad = tmp_path / "bad.yml"
    bad.write_text("proof-residence: [unclosed\n", encoding="utf-8")
    res = run_kb("eval", str(bad))
    assert res.returncode == 2
    assert "bad.yml" in res.stderr and "Traceback" not in res.stderr
    res = run_kb("eval", str(tmp_path / "missing.yml"))
    assert res.returncode == 2 and "missing.yml" in res.stderr


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)


def test_import_csv_writes_entries_and_flags_duplicates(tmp_path: Path, entries_copy: Path) -> None:
    source = tmp_path / "faq.csv"
    _write_csv(
        source,
        [
            ["问题", "答案", "相似问法", "标签"],
            ["社区图书角几点开放？", "图书角开放时间以社区服务中心公布为准。", "图书角开放时间|社区能借书吗", "图书"],
            ["怎么开居住证明？", "请到社区服务中心窗口申请。", "", ""],
        ],
    )
    before = len(load_entries(entries_copy))
    res = run_kb("--entries", str(entries_copy), "import", str(source))
    assert res.returncode == 1
    assert "duplicate of proof-residence" in res.stdout and "nothing written" in res.stderr
    assert len(load_entries(entries_copy)) == before

    res = run_kb("--entries", str(entries_copy), "import", str(source), "--skip-duplicates")
    assert res.returncode == 0, res.stderr
    written = entries_copy / "imported-faq.yml"
    assert written.exists()
    entries = load_entries(entries_copy)
    assert len(entries) == before + 1
    new = next(e for e in entries if e.question == "社区图书角几点开放？")
    assert new.alternatives == ("图书角开放时间", "社区能借书吗") and new.tags == ("图书",)
    res = run_kb("--entries", str(entries_copy), "search", "图书角啥时候开")
    assert new.id in res.stdout.splitlines()[1]

    # importing the same file again: everything is now a duplicate, nothing new
    res = run_kb("--entries", str(entries_copy), "import", str(source), "--skip-duplicates", "--name", "again")
    assert res.returncode == 0 and "nothing new" in res.stdout


def test_import_xlsx_with_column_options(tmp_path: Path) -> None:
    source = tmp_path / "faq.xlsx"
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "FAQ"
    ws.append(["Q", "A", "科室"])
    ws.append(["社区理发志愿服务每月几号？", "义务理发时间以社区服务中心公告为准。", "社区志愿服务站"])
    ws.append(["社区有没有共享雨伞？", "共享雨伞放在服务中心门口，用完请归还。", ""])
    wb.save(source)
    target = tmp_path / "out"
    res = run_kb(
        "import", str(source), "--dir", str(target), "--sheet", "FAQ",
        "--question-col", "Q", "--answer-col", "A", "--department-col", "科室", "--reviewed", "2026-11-01",
    )
    assert res.returncode == 0, res.stderr
    entries = load_entries(target)
    assert [e.question for e in entries] == ["社区理发志愿服务每月几号？", "社区有没有共享雨伞？"]
    assert entries[0].department == "社区志愿服务站"
    assert entries[1].department  # default department filled in
    assert all(e.reviewed and e.reviewed.isoformat() == "2026-11-01" for e in entries)


def test_import_bad_input_is_readable(tmp_path: Path) -> None:
    source = tmp_path / "faq.csv"
    _write_csv(source, [["foo", "bar"], ["x", "y"]])
    res = run_kb("import", str(source), "--dir", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "faq.csv" in res.stderr and "question" in res.stderr and "Traceback" not in res.stderr
    _write_csv(source, [["question", "answer"], ["有问题没答案", ""]])
    res = run_kb("import", str(source), "--dir", str(tmp_path / "out"))
    assert res.returncode == 2 and "faq.csv:2" in res.stderr
    res = run_kb("import", str(tmp_path / "nope.xlsx"))
    assert res.returncode == 2 and "nope.xlsx" in res.stderr


def test_export_formats_round_trip(tmp_path: Path) -> None:
    total = len(load_entries())
    res = run_kb("export")
    assert res.returncode == 0
    rows = list(csv.DictReader(res.stdout.splitlines()))
    assert len(rows) == total and rows[0]["answer"]

    res = run_kb("export", str(tmp_path / "kb.yml"))
    assert res.returncode == 0, res.stderr
    assert len(load_entries(tmp_path)) == total

    xlsx = tmp_path / "kb.xlsx"
    res = run_kb("export", str(xlsx), "--format", "xlsx")
    assert res.returncode == 0, res.stderr
    ws = load_workbook(xlsx).active
    assert ws is not None and ws.max_row == total + 1

    # an exported spreadsheet imports back as duplicates only
    res = run_kb("import", str(xlsx), "--dir", str(tmp_path / "empty"), "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"would write {total} entries" in res.stdout


def test_check_clean_set_and_problems(tmp_path: Path, entries_copy: Path) -> None:
    res = run_kb("check")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 problem(s)" in res.stdout

    (entries_copy / "zz-dupes.yml").write_text(
        """\
entries:
  - id: test-copy
    question: 怎么开居住证明？
    alternatives: [居住证明在哪里开]
    answer: 测试。
    department: 测试
    reviewed: 2026-11-20
""",
        encoding="utf-8",
    )
    res = run_kb("--entries", str(entries_copy), "check")
    assert res.returncode == 1
    assert "duplicate" in res.stdout and "test-copy" in res.stdout and "proof-residence" in res.stdout
    assert "no tags" in res.stdout

    (entries_copy / "zz-missing.yml").write_text("entries:\n  - id: test-missing\n    question: 问？\n", encoding="utf-8")
    res = run_kb("--entries", str(entries_copy), "check")
    assert res.returncode == 2
    assert "zz-missing.yml:2" in res.stderr and "answer" in res.stderr and "Traceback" not in res.stderr


def test_search_gives_no_confident_answer_to_a_question_broader_than_the_entry() -> None:
    """住院 is only a case of the entry on seeing a doctor elsewhere (在外地住院医保能报吗): asked about
    a hospital stay at all, the entry is no confident answer; asked about one elsewhere, it is."""
    broad = run_kb("search", "住院了医保能报多少")
    assert broad.returncode == 0, broad.stderr
    assert broad.stdout.splitlines()[0] != "decision: answer", broad.stdout
    for text in ("我妈住院了医保能给报多少", "住院了医保怎么报"):
        res = run_kb("search", text)
        assert res.stdout.splitlines()[0] != "decision: answer", (text, res.stdout)
    for text in ("在外地住院了医保能报多少", "去北京住院医保能报吗"):
        res = run_kb("search", text)
        assert res.stdout.splitlines()[0] == "decision: answer" and "medical-insurance-offsite" in res.stdout, text


def test_search_answers_only_when_the_entry_is_about_what_is_asked() -> None:
    """A question about vaccination at all shares 疫苗 and 预约 with the HPV vaccine's entry, whose
    every phrasing names the kind; 挂号 is said only in passing by the smartphone class (学用手机挂号).
    Neither is a confident answer; naming the kind, or asking the class's own way, still is."""
    for text in ("打疫苗要预约吗", "挂号怎么挂"):
        res = run_kb("search", text)
        assert res.returncode == 0, res.stderr
        assert res.stdout.splitlines()[0] != "decision: answer", (text, res.stdout)
    for text, entry in (("九价疫苗预约", "hpv-vaccine"), ("不会用微信", "night-school-smartphone")):
        res = run_kb("search", text)
        lines = res.stdout.splitlines()
        assert lines[0] == "decision: answer" and entry in lines[1], (text, res.stdout)


def test_search_gives_no_confident_answer_about_a_thing_the_entry_only_modifies() -> None:
    """楼道灯 is a light in the corridor: the entry on clutter in the corridor says 楼道 but never the
    light, so it is a guess at most; said about the clutter it is still the answer."""
    res = run_kb("search", "楼道灯坏了")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert not (lines[0] == "decision: answer" and "corridor-clutter" in lines[1]), res.stdout
    res = run_kb("search", "楼道里堆满了杂物怎么办")
    lines = res.stdout.splitlines()
    assert lines[0] == "decision: answer" and "corridor-clutter" in lines[1], res.stdout
