"""The dispatch table: table-driven decisions, readable errors for bad files, and the routing
figures from the intents issue holding when routed through the table."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.services.dispatch import RulesError, load_rules, rules_for
from tests.conftest import SHARED_DATA

RULES = load_rules()

# category, confidence, building, urgency → department, assignee, grid, hours, triage
CASES = [
    ("水电气暖", 0.9, "8", "normal", "水电气暖服务中心", None, "第二网格", 24, False),
    ("水电气暖", 0.9, None, "urgent", "水电气暖服务中心", None, None, 2, False),
    ("物业服务", 0.5, "3号楼", "normal", "物业服务中心", None, "第一网格", 168, False),
    ("环境卫生", 0.5, "3栋", "normal", "环卫所", "网格员-张敏", "第一网格", 168, False),
    ("噪音扰民", 0.8, "10", "normal", "综合执法队", "网格员-王芳", "第三网格", 168, False),
    ("噪音扰民", 0.8, "99", "normal", "综合执法队", None, None, 168, False),  # building in no grid
    ("环境卫生", 0.8, None, "normal", "环卫所", None, None, 168, False),  # grid unknown: the department
    ("违章建筑", 0.6, "12号楼", "normal", "城管执法中队", "网格员-王芳", "第三网格", 360, False),
    ("安全隐患", 0.7, "1", "urgent", "安全生产办", None, "第一网格", 2, False),
    ("市政设施", 0.29, "5", "normal", None, None, "第二网格", 168, True),  # below min_confidence
    ("其他", 0.99, "5", "normal", None, None, "第二网格", 168, True),  # no department: triage
    ("外星人", 0.99, None, "normal", None, None, None, 168, True),  # unknown category
    (None, None, None, "urgent", None, None, None, 2, True),
]


@pytest.mark.parametrize(
    ("category", "confidence", "building", "urgency", "department", "assignee", "grid", "hours", "triage"), CASES
)
def test_decisions(category, confidence, building, urgency, department, assignee, grid, hours, triage):
    d = RULES.decide(category, confidence, building, urgency)
    assert (d.department, d.assignee, d.grid, d.deadline_hours, d.triage) == (
        department, assignee, grid, hours, triage)
    now = datetime(2026, 11, 22, tzinfo=UTC)
    assert d.deadline(now) == now + timedelta(hours=hours)


@pytest.mark.parametrize(
    ("text", "urgent"),
    [("楼道里燃气味很大", True), ("3号楼 冒烟 了", True), ("电梯困人了快来", True), ("有人受伤了", True),
     ("隔壁着火了", True), ("插座触电了", True), ("楼道灯不亮", False), ("燃气费怎么交", False)],
)
def test_urgent_words(text, urgent):
    assert RULES.is_urgent(text) is urgent


@pytest.mark.parametrize(("category", "visit"), [("水电气暖", True), ("邻里纠纷", True), ("市政设施", False),
                                                 ("绿化", False), (None, False)])
def test_visit_needs_phone(category, visit):
    assert RULES.needs_visit(category) is visit


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("deadlines: [1, 2", ":1: invalid YAML"),
        ("- a list", "expected a mapping"),
        ("deadlines: {urgent: 2}\ncategories: {a: {}}", "needs a 'general' class"),
        ("deadlines: {urgent: 2, general: x}\ncategories: {a: {}}", "deadlines.general must be a number"),
        ("deadlines: {urgent: 2, general: 5}\ncategories: {a: {deadline: soon}}", "categories.a.deadline 'soon'"),
        ("deadlines: {urgent: 2, general: 5}\ncategories: {a: {}}\ngrids: {g: {worker: x}}", "grids.g needs"),
        ("deadlines: {urgent: 2, general: 5}\ncategories: {a: {}}\nmin_confidence: 2", "min_confidence must"),
    ],
)
def test_bad_files_are_named(tmp_path: Path, content: str, message: str):
    path = tmp_path / "dispatch.yml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_operator_table_in_data_dir_wins(tmp_path: Path):
    doc = yaml.safe_load(Path(RULES.source).read_text(encoding="utf-8"))
    doc["deadlines"]["general"] = 72
    (tmp_path / "dispatch.yml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    assert rules_for(tmp_path).decide("绿化", 0.9, None).deadline_hours == 72
    assert rules_for(None).decide("绿化", 0.9, None).deadline_hours == 168


def test_packaged_categories_match_the_routing_labels():
    from intents.routing import DEFAULT_CATEGORIES, load_categories

    _, labels = load_categories(DEFAULT_CATEGORIES)
    assert set(labels) == set(RULES.categories)


TEDDY = SHARED_DATA / "teddy2020c"


@pytest.mark.skipif(not TEDDY.is_dir(), reason="shared evaluation data not present")
async def test_routing_figures_hold_through_the_table(tmp_path: Path):
    """An operator's model trained on their tickets plus their table: dispatch is as right as routing."""
    from bot.services.routing import route
    from intents.routing import MODEL_FILE, Router, read_table, split

    texts, labels = read_table(TEDDY / "titles_train.csv", ["title"], "label")
    tr_x, te_x, tr_y, te_y = split(texts, labels, 0.2, 42)
    router = Router.train(tr_x, tr_y)
    (tmp_path / MODEL_FILE).parent.mkdir(parents=True)
    router.save(tmp_path / MODEL_FILE)
    departments = {label: f"{label}局" for label in set(labels)}
    table = {
        "min_confidence": 0.0,
        "deadlines": {"urgent": 2, "general": 168},
        "categories": {label: {"department": dept} for label, dept in departments.items()},
    }
    (tmp_path / "dispatch.yml").write_text(yaml.safe_dump(table, allow_unicode=True), encoding="utf-8")
    rules = rules_for(tmp_path)
    right = 0
    routed_right = 0
    confident: Counter[bool] = Counter()
    for text, label in zip(te_x, te_y, strict=True):
        r = await route(tmp_path, text)
        decision = rules.decide(r.category, r.confidence, None)
        right += decision.department == departments[label]
        routed_right += r.category == label
        confident[r.confidence >= RULES.min_confidence] += 1
    # The table adds no error of its own, and the accuracy stays at the intents issue's level.
    assert right == routed_right
    assert right / len(te_x) >= 0.88, right / len(te_x)
    report = router.evaluate(te_x, te_y)
    assert report.macro["f1"] >= 0.885
