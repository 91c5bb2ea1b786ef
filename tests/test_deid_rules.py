"""Rule recognisers for structured PHI, on examples shaped like the physionet notes."""

import pytest

from biotag.deid.rules import DEFAULT_KINDS, KINDS, RuleRecogniser
from biotag.errors import InputError


def found(text, kinds=None):
    return [(text[s.start : s.end], s.type) for s in RuleRecogniser(kinds).find(text)]


@pytest.mark.parametrize(
    "text, phi",
    [
        ("Pt admitted 7/22 from the ED.", "7/22"),
        ("F/U 07/24.", "07/24"),
        ("cath on 9/30/16 showed 3VD", "9/30/16"),
        ("10-18-2020 progress note", "10-18-2020"),
        ("drawn 2001-04-16 11:34 today", "2001-04-16 11:34"),
        ("stated march 21, 1899 then corrected", "march 21, 1899"),
        ("seen 20th Oct, 1989 in clinic", "20th Oct, 1989"),
        ("TURP in nov. 2016 there", "nov. 2016"),
        ("S/P CABG 1957, 1971", "1957"),
        ("breast CA s/p lumpectomy in 1983, HTN", "1983"),
        ("prostate CA'88, GERD", "88"),
        ("AVR 8/88, DDD", "8/88"),
        ("cxs from 10/15-10/16 neg", "10/15-10/16"),
        ("son cell# 450-928-6612 (try 1st)", "450-928-6612"),
        ("call (301) 944-5032 tonight", "(301) 944-5032"),
        ("number 410 392 0780 x45.", "410 392 0780 x45"),
        ("mail j.doe@example.com now", "j.doe@example.com"),
        ("see https://www.example.org/page.", "https://www.example.org/page"),
        ("from host 192.168.1.20 today", "192.168.1.20"),
        ("Pager #12345", "12345"),
        ("MRN: 1234567 on file", "1234567"),
        ("SSN 123-45-6789", "123-45-6789"),
        ("98 yo gentleman admitted", "98"),
        ("a 102 year old woman", "102"),
        ("Baltimore, MD 21201-1234", "21201-1234"),
    ],
)
def test_rules_find_structured_phi(text, phi):
    assert phi in [t for t, _ in found(text)]


@pytest.mark.parametrize(
    "text",
    [
        "c/o 3/10 back pain",  # pain score
        "pain rating 3/10",
        "weaned to PSV 10/5, 40%",  # ventilator setting
        "D5 1/2 NS at 100cc/hr",  # fluid
        "gave captopril 1 1/2 hrs later",  # fraction
        "BP 120/80, HR 80",  # blood pressure
        "settings 12/5/40% tolerated",  # not a date with a year
        "admitted at 1900 to the unit",  # 24-hour time, not a year
        "85 yo woman",  # ages under 90 are not PHI
        "stage 4 decub on coccyx",  # "dec" inside a word is no month
        "IABP 1:1 augmenting",
    ],
)
def test_rules_leave_clinical_numbers_alone(text):
    assert found(text) == []


def test_times_only_when_asked():
    assert found("off sedation since 11:30AM") == []
    assert ("11:30AM", "TIME") in found("off sedation since 11:30AM", KINDS)
    assert "TIME" not in DEFAULT_KINDS


def test_types_and_merging():
    spans = RuleRecogniser().find("admitted 7/22, call 201-561-8910")
    assert [s.type for s in spans] == ["DATE", "PHONE"]
    assert all(s.source.startswith("rules:") for s in spans)


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(InputError, match="unknown rule kinds"):
        RuleRecogniser(["DATE", "SHOESIZE"])
