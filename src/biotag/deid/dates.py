"""Date shifting for surrogates: every date of one patient (or document key) moves by the
same number of days, so intervals between dates are kept, and is written back in the
layout it had ("7/22" stays month/day, "March 3rd, 1999" keeps its month name style,
ordinal and 4-digit year).

:func:`shift_date` rewrites each date *atom* found in a span: numeric dates (``m/d``,
``m/d/yy``, ``m-d-yyyy``, ``yyyy-mm-dd``, ``m/yy``), month-name dates (``march 21, 1899``,
``20th Oct, 1989``, ``nov. 2016``) and bare years (``1993``, ``'88``). Where a part is
missing, the shift is computed in a reference leap year (2000; so "2/29" exists) or on
the 15th of the month, and only the parts the original had are written. A year alone
moves by the whole years of the offset (at least one, in the offset's direction), so
it never stays the same. Returns ``None`` when the span holds no date it understands;
the caller then falls back to another surrogate.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

REFERENCE_YEAR = 2000  # a leap year, so that every m/d of a year-less date exists

_MONTHS = [m.lower() for m in calendar.month_name[1:]]
_MONTH_WORD = r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])(?P<dot>\.?)"
_DAY = r"(?P<day>\d{1,2})(?P<ord>st|nd|rd|th)?"
_YEAR = r"(?P<year>\d{4}|'\d{2}|\d{2})"

_ISO = re.compile(r"(?<!\d)(?P<year>(?:19|20)\d{2})(?P<s>[-/.])(?P<month>\d{1,2})(?P=s)(?P<day>\d{1,2})(?!\d)")
_NUMERIC = re.compile(r"(?<![\d/.])(?P<month>\d{1,2})(?P<s>[/.-])(?P<day>\d{1,2})(?:(?P=s)(?P<year>\d{4}|\d{2}))?(?![\d/])")
_MONTH_DAY = re.compile(rf"{_MONTH_WORD}\s*{_DAY}\b(?:(?P<comma>,?\s*){_YEAR}\b)?", re.IGNORECASE)
_DAY_MONTH = re.compile(rf"{_DAY}\s*(?:of\s+)?{_MONTH_WORD}(?:(?P<comma>,?\s*){_YEAR}\b)?", re.IGNORECASE)
_MONTH_YEAR = re.compile(rf"{_MONTH_WORD},?\s*(?:of\s+)?{_YEAR}\b", re.IGNORECASE)
_YEAR_ONLY = re.compile(r"^(?P<year>(?:19|20)\d{2}|'?\d{2})$")


def _month_number(word: str) -> int:
    word = word.lower()
    return next(i for i, name in enumerate(_MONTHS, 1) if name.startswith(word[:3]))


def _month_like(original: str, month: int) -> str:
    """The name of ``month`` in the style of ``original``: full name or 3-letter abbreviation, case."""
    name = calendar.month_name[month] if original.lower() in _MONTHS else calendar.month_abbr[month]
    return _case_like(original, name)


def _case_like(original: str, word: str) -> str:
    if original.isupper():
        return word.upper()
    if original.islower():
        return word.lower()
    return word[:1].upper() + word[1:].lower()


def _ordinal(day: int) -> str:
    if 10 <= day % 100 <= 20:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")


def _year_text(original: str, year: int) -> str:
    if original.startswith("'"):
        return f"'{year % 100:02d}"
    return f"{year % 100:02d}" if len(original) == 2 else str(year)


def _full_year(text: str | None) -> int | None:
    if text is None:
        return None
    digits = int(text.lstrip("'"))
    if len(text.lstrip("'")) == 4:
        return digits
    return 1900 + digits if digits >= 30 else 2000 + digits  # notes of the 1990s-2020s


def _pad(original: str, value: int) -> str:
    return f"{value:0{len(original)}d}" if original.startswith("0") else str(value)


def _shifted(year: int | None, month: int, day: int | None, days: int) -> date | None:
    try:
        return date(year or REFERENCE_YEAR, month, day or 15) + timedelta(days=days)
    except ValueError:  # "2/31": no such day
        return None


def year_delta(days: int) -> int:
    """Whole years a bare year moves by: the offset's, at least one in its direction."""
    years = round(days / 365.25)
    return years if years else (1 if days >= 0 else -1)


def _rewrite_numeric(m: re.Match, days: int) -> str | None:
    month, day = int(m["month"]), int(m["day"])
    year_text = m.groupdict().get("year")
    if year_text is None and day > 31 and month <= 12:  # "8/88": month/2-digit year
        new = _shifted(_full_year(m["day"]), month, None, days)
        return None if new is None else f"{_pad(m['month'], new.month)}{m['s']}{_year_text(m['day'], new.year)}"
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    new = _shifted(_full_year(year_text), month, day, days)
    if new is None:
        return None
    out = f"{_pad(m['month'], new.month)}{m['s']}{_pad(m['day'], new.day)}"
    return out + (f"{m['s']}{_year_text(year_text, new.year)}" if year_text else "")


def _rewrite_iso(m: re.Match, days: int) -> str | None:
    new = _shifted(int(m["year"]), int(m["month"]), int(m["day"]), days) if 1 <= int(m["month"]) <= 12 else None
    if new is None:
        return None
    return f"{new.year}{m['s']}{_pad(m['month'], new.month)}{m['s']}{_pad(m['day'], new.day)}"


def _rewrite_named(m: re.Match, days: int) -> str | None:
    groups = m.groupdict()
    month = _month_number(m["month"])
    day = int(groups["day"]) if groups.get("day") else None
    new = _shifted(_full_year(groups.get("year")), month, day, days)
    if new is None:
        return None
    parts = {"month": _month_like(m["month"], new.month)}
    if day is not None:
        parts["day"] = _pad(groups["day"], new.day)
        if groups.get("ord"):
            parts["ord"] = _case_like(groups["ord"], _ordinal(new.day))
    if groups.get("year"):
        parts["year"] = _year_text(groups["year"], new.year)
    return _replace_groups(m, parts)


def _replace_groups(m: re.Match, parts: dict[str, str]) -> str:
    """The match's text with the named groups in ``parts`` replaced."""
    text, base, out, pos = m.group(0), m.start(), [], 0
    for name, value in sorted(parts.items(), key=lambda kv: m.start(kv[0])):
        start, end = m.start(name) - base, m.end(name) - base
        out.append(text[pos:start])
        out.append(value)
        pos = end
    out.append(text[pos:])
    return "".join(out)


def shift_date(text: str, days: int) -> str | None:
    """``text`` with every date in it moved by ``days``; None when it holds none."""
    year_only = _YEAR_ONLY.match(text.strip())
    if year_only:
        year = _full_year(year_only["year"])
        assert year is not None
        stripped = text.strip()
        return text.replace(stripped, _year_text(year_only["year"], year + year_delta(days)))
    taken: list[tuple[int, int, str]] = []
    for pattern, rewrite in (
        (_ISO, _rewrite_iso),
        (_MONTH_DAY, _rewrite_named),
        (_DAY_MONTH, _rewrite_named),
        (_MONTH_YEAR, _rewrite_named),
        (_NUMERIC, _rewrite_numeric),
    ):
        for m in pattern.finditer(text):
            if any(m.start() < e and s < m.end() for s, e, _ in taken):
                continue
            new = rewrite(m, days)
            if new is None:
                return None
            taken.append((m.start(), m.end(), new))
    if not taken:
        return None
    out, pos = [], 0
    for start, end, new in sorted(taken):
        out += [text[pos:start], new]
        pos = end
    return "".join(out + [text[pos:]])
