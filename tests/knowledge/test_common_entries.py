"""Entries for the questions residents most often ask a service centre or 12345 (hospital and
outpatient reimbursement, 大病保险, 公积金, school places, passports, driving licences, nursing
homes): everyday phrasings find them. The questions are written for this test, apart from the
evaluation sets."""

from __future__ import annotations

import pytest

from knowledge.base import KnowledgeBase

EVERYDAY = [
    ("住院了医保咋报销", "medical-insurance-inpatient"),
    ("俺老伴住院了 出院的时候医保咋结算", "medical-insurance-inpatient"),
    ("平常去门诊看病拿药医保给报吗", "medical-insurance-outpatient"),
    ("大病保险要自己申请不", "medical-insurance-serious-illness"),
    ("换了工作医保关系咋转", "medical-insurance-transfer"),
    ("公积金咋取出来", "housing-fund-withdraw"),
    ("租房子能把公积金取出来不", "housing-fund-withdraw"),
    ("买房想用公积金贷款咋办", "housing-fund-loan"),
    ("房本丢了咋补", "property-certificate"),
    ("公租房咋申请", "public-rental-housing"),
    ("娃明年上一年级 在哪报名", "school-enrollment"),
    ("孩子三岁了 幼儿园咋报名", "kindergarten-enrollment"),
    ("孩子想转学 学籍咋转", "school-transfer"),
    ("想去香港 港澳通行证在哪办", "passport-travel-permit"),
    ("驾照快到期了在哪换", "driving-licence"),
    ("退休金每个月几号到账", "pension-payment"),
    ("老人想住养老院 咋申请", "nursing-home"),
]


@pytest.mark.parametrize(("text", "expected"), EVERYDAY, ids=[t for t, _ in EVERYDAY])
def test_everyday_phrasing_finds_the_new_entry(kb: KnowledgeBase, text: str, expected: str) -> None:
    answer = kb.answer(text)
    assert answer.kind != "unknown", kb.search(text)
    assert answer.hits[0].entry.id == expected, [h.entry.id for h in answer.hits]


@pytest.mark.parametrize("text", ["住院医保怎么报销", "住院了医保咋报销", "在本地住院医保能报多少"])
def test_ordinary_hospital_stay_is_not_the_offsite_entry(kb: KnowledgeBase, text: str) -> None:
    """Hospitalisation at home was answered, confidently, with 异地就医备案 (no entry covered it)."""
    answer = kb.answer(text)
    assert answer.kind == "answer", kb.search(text)
    assert answer.hits[0].entry.id == "medical-insurance-inpatient"


def test_general_reimbursement_question_offers_the_common_cases(kb: KnowledgeBase) -> None:
    """'医保怎么报销' offered only 慢性病门诊: the hospital-stay entry comes first now."""
    answer = kb.answer("你好，想咨询一下医保怎么报销")
    ids = [h.entry.id for h in answer.hits]
    assert answer.kind in ("answer", "choices")
    assert ids[0] == "medical-insurance-inpatient", ids


def test_abroad_in_hospital_still_gets_the_offsite_entry(kb: KnowledgeBase) -> None:
    answer = kb.answer("去外地看病医保要备案吗")
    assert answer.kind != "unknown"
    assert answer.hits[0].entry.id == "medical-insurance-offsite"
