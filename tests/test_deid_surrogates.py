"""Surrogates: consistency, date shifting that keeps intervals, seeded draws, and never
an original PHI string in a surrogate."""

from datetime import date

import pytest

from biotag.deid.dates import shift_date, year_delta
from biotag.deid.surrogates import Forbidden, Surrogates, draw_offset

import random


def test_same_original_same_surrogate_ignoring_case_and_spacing():
    s = Surrogates("patient-1", seed=7)
    none = Forbidden([])
    first = s.get("Radu Lange", "PHI", none)
    assert s.get("radu  lange", "PHI", none) == first.lower()  # same surrogate, in the occurrence's case
    assert s.get("Radu Lange", "PHI", none) == first
    # words are consistent too: "Radu" alone maps to the first word of the name's surrogate
    assert s.get("Radu", "PHI", none) == first.split()[0]


def test_case_style_is_kept():
    s = Surrogates("k", seed=1)
    none = Forbidden([])
    assert s.get("JONES", "PHI", none).isupper()
    assert s.get("jones", "PHI", none).islower()


def test_seed_and_key_decide_everything():
    none = Forbidden([])
    a = [Surrogates("p1", seed=3).get(t, k, none) for t, k in (("Jones", "PHI"), ("7/22", "DATE"), ("201-561-8910", "PHONE"))]
    b = [Surrogates("p1", seed=3).get(t, k, none) for t, k in (("Jones", "PHI"), ("7/22", "DATE"), ("201-561-8910", "PHONE"))]
    c = [Surrogates("p1", seed=4).get(t, k, none) for t, k in (("Jones", "PHI"), ("7/22", "DATE"), ("201-561-8910", "PHONE"))]
    assert a == b and a != c


def test_a_surrogate_never_is_or_contains_a_detected_string():
    originals = ["Abel", "Ada", "Jones"]
    forbidden = Forbidden(originals)
    for seed in range(30):
        s = Surrogates("k", seed=seed)
        out = s.get("Jones Smith", "PHI", forbidden)
        assert out is not None
        assert not any(o.lower() in out.lower().split() for o in originals)
        assert forbidden.allows(out, "Jones Smith")


def test_offsets_are_never_a_whole_year_or_zero():
    rng = random.Random(0)
    offsets = [draw_offset(rng) for _ in range(500)]
    assert all(30 <= abs(o) <= 330 for o in offsets)
    assert {o > 0 for o in offsets} == {True, False}


@pytest.mark.parametrize("days", [45, -200, 300])
def test_date_shift_keeps_intervals(days):
    first, second = "3/15/2001", "04/02/2001"
    a, b = shift_date(first, days), shift_date(second, days)
    parse = lambda t: date(int(t.split("/")[2]), int(t.split("/")[0]), int(t.split("/")[1]))  # noqa: E731
    assert (parse(b) - parse(a)).days == (date(2001, 4, 2) - date(2001, 3, 15)).days
    assert (parse(a) - date(2001, 3, 15)).days == days
    assert b.startswith("0") or parse(b).month >= 10  # zero padding kept


def test_one_offset_per_key_across_formats():
    s = Surrogates("patient-9", seed=11)
    none = Forbidden([])
    d1 = s.get("7/22", "DATE", none)
    d2 = s.get("July 25th", "DATE", none)
    m1, day1 = map(int, d1.split("/"))
    shifted = date(2000, m1, day1)
    month_name, day2 = d2.split()
    import calendar

    assert (date(2000, list(calendar.month_name).index(month_name), int(day2[:-2])) - shifted).days == 3
    assert day2[-2:] in ("st", "nd", "rd", "th")


@pytest.mark.parametrize(
    "text, days, expected",
    [
        ("7/22", 10, "8/1"),
        ("07/02/1999", 40, "08/11/1999"),
        ("2001-04-16 11:34", 40, "2001-05-26 11:34"),
        ("march 21, 1899", -200, "september 2, 1898"),
        ("20th Oct, 1989", 40, "29th Nov, 1989"),
        ("MARCH OF 1993", 40, "APRIL OF 1993"),
        ("nov. 2016", 40, "dec. 2016"),
        ("10/15-10/16", 40, "11/24-11/25"),
        ("8/88", 40, "9/88"),
        ("1993", 40, "1994"),
        ("'88", -40, "'87"),
    ],
)
def test_date_formats_are_kept(text, days, expected):
    assert shift_date(text, days) == expected


def test_not_a_date_gives_none():
    assert shift_date("2/31", 10) is None
    assert shift_date("hello", 10) is None
    assert year_delta(30) == 1 and year_delta(-30) == -1 and year_delta(800) == 2


def test_reserved_ranges_for_contact_details():
    s = Surrogates("k", seed=2)
    none = Forbidden([])
    phone = s.get("(301) 944-5032", "PHONE", none)
    assert phone[0] == "(" and phone[4:6] == ") " and phone[6:12] == "555-01"
    assert s.get("10.1.2.3", "IP", none).startswith("192.0.2.")
    assert s.get("a.b@c.com", "EMAIL", none).endswith("@example.org")
    assert 90 <= int(s.get("98", "AGE", none)) <= 104
