"""The command line through a subprocess: ``python -m bot intents …`` / ``python -m bot routing …``,
with the data folder given as ``BOT_DATA_DIR``."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BOT_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=300)


def test_predict_from_stdin(tmp_path):
    r = run(["intents", "predict"], tmp_path, stdin="为啥路灯一直不修？\n机分咋查\n\n明天北京天气\n")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["intent"] for row in rows] == ["complaint", "coupon", "fallback"]
    for row in rows:
        assert {"text", "intent", "confidence", "runner_up", "entities"} <= set(row)
    assert "路灯" in r.stdout  # ensure_ascii=False


def test_predict_from_file(tmp_path):
    f = tmp_path / "msgs.txt"
    f.write_text("3号楼2单元501漏水\n", encoding="utf-8")
    r = run(["intents", "predict", str(f)], tmp_path)
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["entities"]["addresses"][0]["room"] == "501"


def test_predict_missing_file(tmp_path):
    r = run(["intents", "predict", str(tmp_path / "nope.txt")], tmp_path)
    assert r.returncode == 2
    assert "nope.txt" in r.stderr and "Traceback" not in r.stderr


def test_eval_labelled_jsonl_writes_report(tmp_path):
    f = tmp_path / "labelled.jsonl"
    rows = [("楼道灯坏了没人修", "complaint"), ("积分怎么兑换", "coupon"), ("书法课几点上课", "course_booking"),
            ("低保怎么申请", "query"), ("今天天气怎么样", "fallback"), ("谢谢你", "smalltalk"), ("转人工", "handoff")]
    f.write_text("".join(json.dumps({"text": t, "intent": i}, ensure_ascii=False) + "\n" for t, i in rows),
                 encoding="utf-8")
    out = tmp_path / "report"
    r = run(["intents", "eval", str(f), "--out", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "macro-F1" in r.stdout
    report = json.loads((out / "intents.json").read_text(encoding="utf-8"))
    assert report["n"] == len(rows)
    assert {"per_label", "macro", "confusion_matrix", "misclassified", "confidence_histogram"} <= set(report)
    assert (out / "intents_confusion.png").stat().st_size > 0
    assert (out / "intents_confidence.png").stat().st_size > 0


def test_eval_csv_wrong_columns(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("message,label\n你好,smalltalk\n", encoding="utf-8")
    r = run(["intents", "eval", str(f)], tmp_path)
    assert r.returncode == 2
    assert "bad.csv" in r.stderr and "text" in r.stderr and "Traceback" not in r.stderr


def test_eval_malformed_jsonl_names_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"text": "你好", "intent": "smalltalk"}\n{not json\n', encoding="utf-8")
    r = run(["intents", "eval", str(f)], tmp_path)
    assert r.returncode == 2
    assert "bad.jsonl:2" in r.stderr


def test_check_ok_and_conflict(tmp_path):
    r = run(["intents", "check"], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    training = tmp_path / "intents"
    training.mkdir()
    (training / "a.yml").write_text("intent: coupon\nexamples:\n  - 积分怎么查\n  - 积分怎么查\n", encoding="utf-8")
    (training / "b.yml").write_text("intent: query\nexamples:\n  - 积分怎么查\n", encoding="utf-8")
    r = run(["intents", "check", "--training-dir", str(training)], tmp_path)
    assert r.returncode == 1
    assert "CONFLICT" in r.stdout and "b.yml:3" in r.stdout and "TOO FEW" in r.stdout


def test_malformed_training_yaml(tmp_path):
    training = tmp_path / "intents"
    training.mkdir()
    (training / "coupon.yml").write_text("intent: coupon\nexamples:\n  - 积分\n  - [oops\n", encoding="utf-8")
    (training / "query.yml").write_text("intent: query\nexamples:\n  - 低保\n", encoding="utf-8")
    r = run(["intents", "predict", "--training-dir", str(training)], tmp_path, stdin="你好\n")
    assert r.returncode == 2
    assert "coupon.yml:" in r.stderr and "Traceback" not in r.stderr


def _write_tickets(path: Path) -> None:
    rows = []
    samples = {
        "维修": ["电梯坏了", "水管漏水", "路灯不亮", "门禁坏了", "楼道灯不亮", "下水道堵了"],
        "环境": ["垃圾没人清", "到处是狗屎", "污水横流", "垃圾桶满了", "油烟太大", "老鼠很多"],
        "噪音": ["楼上装修太吵", "广场舞太吵", "半夜施工", "狗一直叫", "KTV太吵", "打麻将到半夜"],
    }
    for label, texts in samples.items():
        for i, t in enumerate(texts * 3):
            rows.append({"标题": f"{t}{i}", "内容": f"我们小区{t}，请处理", "类别": label})
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["标题", "内容", "类别"])
        w.writeheader()
        w.writerows(rows)


def test_routing_train_predict_eval(tmp_path):
    f = tmp_path / "tickets.csv"
    _write_tickets(f)
    model = tmp_path / "routing.npz"
    r = run(["routing", "train", str(f), "--text-column", "标题+内容", "--label-column", "类别", "--out", str(model)],
            tmp_path)
    assert r.returncode == 0, r.stderr
    assert model.is_file()
    r = run(["routing", "predict", "--model", str(model)], tmp_path, stdin="楼上装修吵死了\n电梯又坏了\n")
    assert r.returncode == 0, r.stderr
    cats = [json.loads(line)["category"] for line in r.stdout.splitlines()]
    assert cats == ["噪音", "维修"]
    r = run(["routing", "eval", str(f), "--text-column", "标题", "--text-column", "内容", "--label-column", "类别",
             "--out", str(tmp_path / "rep")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rep" / "routing.json").is_file()


def test_routing_model_and_reports_live_in_bot_data_dir(tmp_path):
    f = tmp_path / "tickets.csv"
    _write_tickets(f)
    data_dir = tmp_path / "data"
    r = run(["routing", "train", str(f), "--text-column", "标题+内容", "--label-column", "类别"], data_dir)
    assert r.returncode == 0, r.stderr
    assert (data_dir / "models" / "routing.npz").is_file()
    r = run(["routing", "predict"], data_dir, stdin="楼上装修吵死了\n")  # the trained model, not the default
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["category"] == "噪音"
    r = run(["routing", "eval", str(f), "--text-column", "标题", "--label-column", "类别"], data_dir)
    assert r.returncode == 0, r.stderr
    assert (data_dir / "reports" / "routing" / "routing.json").is_file()


def _write_extra(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["留言", "类别"])
        w.writeheader()
        w.writerows({"留言": text, "类别": label} for text, label in rows)


def test_routing_train_extra_file_changes_a_prediction(tmp_path):
    f = tmp_path / "tickets.csv"
    _write_tickets(f)
    message = "共享单车堆满人行道"
    r = run(["routing", "train", str(f), "--text-column", "标题+内容", "--label-column", "类别",
             "--out", str(tmp_path / "plain.npz")], tmp_path)
    assert r.returncode == 0, r.stderr
    r = run(["routing", "predict", "--model", str(tmp_path / "plain.npz")], tmp_path, stdin=message + "\n")
    before = json.loads(r.stdout)["category"]
    assert before != "环境"
    extra = tmp_path / "more.csv"
    _write_extra(extra, [(f"{t}，请管一管", "环境") for t in ["共享单车堆满人行道", "单车乱停堵住路", "人行道上全是共享单车",
                                                         "共享单车倒了一地", "小区门口单车成堆"]])
    r = run(["routing", "train", str(f), "--text-column", "标题+内容", "--label-column", "类别",
             "--extra", str(extra), "--extra-text-column", "留言", "--out", str(tmp_path / "more.npz")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "extra: 5 rows" in r.stdout
    r = run(["routing", "predict", "--model", str(tmp_path / "more.npz")], tmp_path, stdin=message + "\n")
    assert json.loads(r.stdout)["category"] == "环境"


def test_routing_eval_extra_rows_repeating_a_test_row_are_left_out(tmp_path):
    """The extra file holds the same tickets as whole messages: none of them may reach training."""
    f = tmp_path / "tickets.csv"
    _write_tickets(f)
    with f.open(encoding="utf-8") as fh:
        tickets = list(csv.DictReader(fh))
    extra = tmp_path / "messages.csv"
    _write_extra(extra, [(f"{t['标题']}。{t['内容']}", t["类别"]) for t in tickets])
    r = run(["routing", "eval", str(f), "--text-column", "标题", "--label-column", "类别", "--extra", str(extra),
             "--extra-text-column", "留言", "--test-size", "0.5", "--out", str(tmp_path / "rep")], tmp_path)
    assert r.returncode == 0, r.stderr
    mode = json.loads((tmp_path / "rep" / "routing.json").read_text(encoding="utf-8"))["mode"]
    kept, dropped = (int(n) for n in re.findall(r"extra: (\d+) rows trained on, (\d+) left out", mode)[0])
    assert kept + dropped == len(tickets)
    assert dropped >= len(tickets) // 2  # at least every test row's own message


def _write_vectors(path: Path) -> None:
    """Word vectors in the text format (a ``count dim`` line, then a word and its numbers): the words of
    each category near one direction, among them words the tickets never use (聒噪, 喧哗; 故障, 失灵)."""
    groups = {0: ["吵", "施工", "半夜", "聒噪", "喧哗"], 1: ["坏", "漏水", "故障", "失灵"], 2: ["垃圾", "污水", "腐臭"]}
    lines = [f"{sum(len(g) for g in groups.values())} 4"]
    for axis, words in groups.items():
        for k, word in enumerate(words):
            vec = [0.1 * ((k + j) % 3) for j in range(4)]
            vec[axis] = 1.0
            lines.append(word + " " + " ".join(f"{x:.2f}" for x in vec))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.timeout(300)  # two trainings (one through the CLI) and a CLI prediction: slow on a loaded machine
def test_routing_train_vectors_file_routes_words_the_tickets_lack(tmp_path):
    """An operator's word vectors teach the model words its tickets never use; the model file keeps that."""
    from intents.routing import Router, read_table

    f = tmp_path / "tickets.csv"
    _write_tickets(f)
    messages = "聒噪喧哗\n故障失灵\n"
    plain = Router.train(*read_table(f, ["标题", "内容"], "类别"))  # as 'routing train' without --vectors
    assert [r.category for r in plain.route_many(messages.split())] != ["噪音", "维修"]
    vectors = tmp_path / "words.vec"
    _write_vectors(vectors)
    r = run(["routing", "train", str(f), "--text-column", "标题+内容", "--label-column", "类别",
             "--vectors", str(vectors), "--vector-weight", "0.7", "--out", str(tmp_path / "vec.npz")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "vectors: 12 words of 4 dimensions" in r.stdout and "weight 0.7 in the mix" in r.stdout
    r = run(["routing", "predict", "--model", str(tmp_path / "vec.npz")], tmp_path, stdin=messages)
    assert r.returncode == 0, r.stderr
    assert [json.loads(line)["category"] for line in r.stdout.splitlines()] == ["噪音", "维修"]


@pytest.mark.parametrize(
    ("content", "extra", "said"),
    [
        ("吵 1.0 0.0\n坏 1.0\n", [], "words.vec:2: 1 numbers, the first line had 2"),
        ("吵 1.0 abc\n", [], "words.vec:1: not a number"),
        ("2 3\n", [], "no usable word vectors"),
        ("吵 1.0 0.0\n", ["--vector-weight", "2"], "--vector-weight must be between 0 and 1"),
        (None, [], "vectors file not found"),
    ],
)
def test_routing_train_bad_vectors(tmp_path, content, extra, said):
    f = tmp_path / "tickets.csv"
    _write_tickets(f)
    vectors = tmp_path / "words.vec"
    if content is not None:
        vectors.write_text(content, encoding="utf-8")
    r = run(["routing", "train", str(f), "--text-column", "标题", "--label-column", "类别", "--vectors", str(vectors),
             *extra], tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and said in r.stderr and "Traceback" not in r.stderr


def test_routing_default_model_predicts_our_categories(tmp_path):
    r = run(["routing", "predict"], tmp_path, stdin="楼顶有人私搭乱建\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["category"] == "违章建筑"


@pytest.mark.parametrize(
    "args",
    [
        ["routing", "train", "{f}", "--text-column", "正文", "--label-column", "类别"],
        ["routing", "eval", "{f}", "--text-column", "标题", "--label-column", "部门"],
        ["routing", "train", "{missing}", "--text-column", "标题", "--label-column", "类别"],
    ],
)
def test_routing_bad_input(tmp_path, args):
    f = tmp_path / "tickets.csv"
    _write_tickets(f)
    args = [a.format(f=f, missing=tmp_path / "missing.csv") for a in args]
    r = run(args, tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and r.stderr.startswith("error:")


# ---------------------------------------------------------------------------- intents train --extra
PHRASE = "蓝莓芝士蛋糕怎么预订"
LOCAL = [PHRASE, "蓝莓芝士蛋糕还能预订吗", "预订蓝莓芝士蛋糕", "我要预订一个蓝莓芝士蛋糕", "芝士蛋糕预订",
         "蓝莓蛋糕怎么订", "帮我预订蓝莓芝士蛋糕", "蓝莓芝士蛋糕预订几号开始"]


def _predict(text: str, data_dir: Path) -> str:
    r = run(["intents", "predict"], data_dir, stdin=text + "\n")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["intent"]


def test_train_extra_changes_a_prediction(tmp_path):
    """A community's own labelled messages (here: its baking class takes cake orders) teach the model."""
    assert _predict(PHRASE, tmp_path) != "course_booking"
    extra = tmp_path / "reviewed.csv"
    with extra.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["text", "intent"])
        w.writeheader()
        w.writerows({"text": t, "intent": "course_booking"} for t in LOCAL)
        w.writerow({"text": "", "intent": ""})  # an empty row is skipped
    r = run(["intents", "train", "--extra", str(extra)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert f"{len(LOCAL)} labelled messages" in r.stdout and "intents reload" in r.stdout
    before, now = (int(n) for n in re.findall(r"(\d+)/8 (?:before|now)", r.stdout))
    assert before < now == len(LOCAL)
    stored = tmp_path / "intents" / "labelled.jsonl"
    assert len(stored.read_text(encoding="utf-8").splitlines()) == len(LOCAL)
    assert _predict(PHRASE, tmp_path) == "course_booking"


def test_stored_labels_merge_relabel_and_replace(tmp_path):
    from intents.dataset import Example, merge_labelled

    stored = tmp_path / "labelled.jsonl"
    src = tmp_path / "src.csv"
    assert merge_labelled(stored, [Example(t, "course_booking", src, 2) for t in LOCAL]) == (8, 8)
    # A message labelled again takes its new intent; the same label again changes nothing.
    assert merge_labelled(stored, [Example(PHRASE, "query", src, 2), Example(LOCAL[1], "course_booking", src, 3)]) == (8, 1)
    rows = [json.loads(line) for line in stored.read_text(encoding="utf-8").splitlines()]
    assert {"text": PHRASE, "intent": "query"} in rows and len(rows) == 8
    assert merge_labelled(stored, [], replace_all=True) == (0, 0)
    assert stored.read_text(encoding="utf-8") == ""


def test_train_extra_from_xlsx_with_other_column_names(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["留言", "意图"])
    for t in LOCAL:
        ws.append([t, "course_booking"])
    wb.save(tmp_path / "reviewed.xlsx")
    r = run(["intents", "train", "--extra", str(tmp_path / "reviewed.xlsx"), "--text-column", "留言",
             "--intent-column", "意图"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "reviewed.xlsx: 8 labelled messages (course_booking 8)" in r.stdout
    assert "/8 now" in r.stdout
    rows = (tmp_path / "intents" / "labelled.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(row)["text"] for row in rows] == LOCAL


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("text,label\n我想报名书法课,course_booking\n", ["missing column(s) intent", "found: text, label"]),
        ("text,intent\n我想报名书法课,course_booking\n停车月卡怎么办,parking\n", ["bad.csv:3", "unknown intent 'parking'",
                                                                         "known: complaint"]),
        ("text,intent\n,course_booking\n", ["bad.csv:2", "empty 'text'"]),
        ("text,intent\n", ["no labelled rows"]),
    ],
)
def test_train_extra_bad_files(tmp_path, content, needles):
    bad = tmp_path / "bad.csv"
    bad.write_text(content, encoding="utf-8")
    r = run(["intents", "train", "--extra", str(bad)], tmp_path)
    assert r.returncode == 2, r.stdout
    assert "Traceback" not in r.stderr
    for needle in needles:
        assert needle in r.stderr
    assert not (tmp_path / "intents" / "labelled.jsonl").exists()


def test_train_extra_missing_file(tmp_path):
    r = run(["intents", "train", "--extra", str(tmp_path / "nope.csv")], tmp_path)
    assert r.returncode == 2 and "nope.csv: file not found" in r.stderr


def test_eval_sets_skip_real_text_cleanly_when_absent(tmp_path):
    r = run(["intents", "eval", "--sets", "written,teddy,smp", "--shared-data", str(tmp_path / "none"),
             "--errors", "0", "--out", str(tmp_path / "reports")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "written  n=569" in r.stdout
    assert "teddy: skipped" in r.stdout and "smp: skipped" in r.stdout and "Traceback" not in r.stderr
    assert (tmp_path / "reports" / "intents_written.json").is_file()
    r = run(["intents", "eval", "--sets", "nonsense"], tmp_path)
    assert r.returncode == 2 and "unknown evaluation set 'nonsense'" in r.stderr


def test_eval_sets_do_not_print_the_hold_out_sets_misses(tmp_path):
    """The hold-out titles are measured, never read: their misclassified titles are not listed (the
    development sets' are). Made-up titles stand in for the real ones, at every row number."""
    shared = tmp_path / "shared"
    (shared / "teddy2020c").mkdir(parents=True)
    with (shared / "teddy2020c" / "titles_train.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["title", "label"])
        writer.writerows([["明天北京天气怎么样", "其他"]] * 6442)
    r = run(["intents", "eval", "--sets", "teddy2,holdout", "--shared-data", str(shared), "--errors", "5",
             "--out", str(tmp_path / "reports")], tmp_path)
    assert r.returncode == 0, r.stderr
    teddy2, holdout = r.stdout.split("== holdout")
    assert "明天北京天气怎么样" in teddy2
    assert "明天北京天气怎么样" not in holdout and "not listed" in holdout
