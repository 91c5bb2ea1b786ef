"""Rule recognisers for structured PHI: dates, times, phone/fax numbers, e-mail
addresses, URLs, IP addresses, record/ID numbers, ages over 89 and postal codes.

Each :class:`Recogniser` is one regular expression of one PHI type; where only part of a
match is PHI (the number after "Pager #", the age before "yo") the part is the named
group ``phi``. The expressions were designed by reading the gold PHI of the physionet-deid
*train* notes (dev was kept for the reported numbers). What those notes taught:

* dates are mostly ``m/d`` without a year ("admitted 7/22", "F/U 7/24"), then ``m/d/y``,
  ``m-d-y``, month names ("march 21, 1899", "nov. 2016", "20th Oct, 1989"), years after a
  history item ("CABG 1957, 1971", "CA'88"); ``m/d`` is also a ratio in these notes
  ("pain 3/10", "PEEP 5/10", "1:1"), so fractions after a pain or ventilator word, and
  numbers inside longer slash runs ("120/80/14"), are not dates;
* bare four-digit years collide with 24-hour times ("admitted at 1900"), so a year needs a
  word that introduces a year ("in 1983", "since 2006") or a history item before it;
* phone numbers come in many layouts ("135-442-9738", "(301 273 45166",
  "410 392 0780 x45", "212- 476- 8356"), pager and reference numbers after their label
  ("Pager #12345", "PG 23456", "ref # 8336652");
* times are not PHI under HIPAA's Safe Harbor and the physionet gold does not mark them
  ("SINCE 11:30AM" is unmarked), so the ``TIME`` recogniser exists (a time attached to a
  date is part of the date) but is off by default (:data:`DEFAULT_KINDS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from biotag.deid.spans import PhiSpan, merge_spans
from biotag.errors import InputError

DATE, TIME, PHONE, EMAIL, URL, IP, ID, AGE, ZIP = "DATE", "TIME", "PHONE", "EMAIL", "URL", "IP", "ID", "AGE", "ZIP"

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)(?![a-z])\.?"
)
_M = r"(?:0?[1-9]|1[0-2])"  # month number
_D = r"(?:0?[1-9]|[12]\d|3[01])"  # day of month
_Y = r"(?:(?:19|20)\d{2}|\d{2})"  # 4- or 2-digit year
_ORD = r"(?:st|nd|rd|th)?"
_CLOCK = r"(?:(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d)?(?:\s*[ap]\.?m\.?)?|(?:1[0-2]|0?[1-9])\s*[ap]\.?m\.?)"
# words after which "3/10" or "10/5" is a score or a ventilator setting, not a date
_RATIO_BEFORE = r"(?:pain|c/o|rating|rated|scale|peep|psv?|c\s*pap|bi-?pap|flowby|ac|simv|imv|vent|of|grip|murmur|d5|%)"
# words after which "1/2" or "4/4" is a fraction or a count
_RATIO_AFTER = r"(?:(?:\w+\s+)?pain|ns\b|n/s|strength|str\b|st\b|up\b|hrs?\b|hours?\b|dose|bottles?|liters?|of\b|psv|peep|cpap|%|x\s*\d)"
_FRACTIONS = {"1/2", "1/3", "2/3", "1/4", "3/4"}


@dataclass(frozen=True)
class Recogniser:
    name: str
    type: str
    pattern: re.Pattern
    # extra check on the match (e.g. IP octets <= 255); None: every match counts
    accept: Callable[[re.Match], bool] | None = None

    def find(self, text: str) -> Iterable[PhiSpan]:
        for match in self.pattern.finditer(text):
            if self.accept is not None and not self.accept(match):
                continue
            group = "phi" if "phi" in self.pattern.groupindex and match.group("phi") is not None else 0
            start, end = match.span(group)
            if end > start:
                yield PhiSpan(start, end, self.type, f"rules:{self.name}")


def _re(pattern: str) -> re.Pattern:
    return re.compile(pattern, re.IGNORECASE | re.VERBOSE)


def _valid_ip(match: re.Match) -> bool:
    return all(int(part) <= 255 for part in match.group(0).split("."))


def _not_a_ratio(match: re.Match) -> bool:
    """``m/d`` that is no score, setting or part of a blood-pressure-like slash run."""
    text, start, end = match.string, match.start(), match.end()
    before = text[max(0, start - 12) : start]
    if re.search(rf"{_RATIO_BEFORE}\s*[:=\-]?\s*$", before, re.IGNORECASE):
        return False
    if re.match(rf"\s*{_RATIO_AFTER}", text[end : end + 12], re.IGNORECASE):
        return False
    if match.group(0) in _FRACTIONS and re.search(r"\d\s$", before):  # "1 1/2"
        return False
    return not (re.match(r"[/\d]", text[end : end + 1]) or re.search(r"[/\d.]$", text[max(0, start - 1) : start]))


RECOGNISERS: tuple[Recogniser, ...] = (
    # -- dates (a time right after a date belongs to the date) --
    Recogniser("date-iso", DATE, _re(rf"\b(?:19|20)\d{{2}}-{_M}-{_D}(?:[ T]{_CLOCK})?\b")),
    Recogniser("date-mdy", DATE, _re(rf"(?<![\d/.-]){_M}(?P<sep>[/.-]){_D}(?P=sep){_Y}(?:\s+{_CLOCK})?(?![\d/%]|-\d)")),
    Recogniser("date-range", DATE, _re(rf"(?<![\d/]){_M}/{_D}\s*-\s*{_M}/{_D}(?![\d/])")),
    Recogniser("date-md", DATE, _re(rf"(?<![\w/.-]){_M}/{_D}(?![\w/]|-\d|\.\d)"), _not_a_ratio),
    # month/2-digit year of a history item ("AVR 8/88", "fx 5/97"): 32-99 cannot be a day
    Recogniser("date-month-yy", DATE, _re(rf"(?<![\w/.-]){_M}/(?:3[2-9]|[4-9]\d)(?![\w/']|-\d|\.\d)")),
    Recogniser("date-month-day", DATE, _re(rf"\b{_MONTH}\s*{_D}{_ORD}\b(?:,?\s*(?:\d{{4}}|\d{{2}})\b)?")),
    Recogniser("date-day-month", DATE, _re(rf"\b{_D}{_ORD}\s*(?:of\s+)?{_MONTH}(?:,?\s*(?:\d{{4}}|\d{{2}})\b)?")),
    Recogniser("date-month-year", DATE, _re(rf"\b{_MONTH},?\s*(?:of\s+)?(?:(?:19|20)\d{{2}}\b|'\d{{2}}\b)")),
    Recogniser(
        "date-year",
        DATE,
        _re(
            r"(?:\b(?:in|since|year|of|from|until|circa|c\.)\s+|(?:\b(?:cabg|mi|cva|ca|avr|mvr|pci|ptca|stent|repair|surgery|dx|diagnosed)\s*,?\s*))"
            r"(?P<phi>(?:19[0-9]\d|20[0-3]\d))\b(?!\s*(?:hrs?|hours|h\b|cc|ml|mg|units|kcal|mcg))"
        ),
    ),
    Recogniser("date-year-list", DATE, _re(r"(?<=\d{4},\s)(?P<phi>(?:19|20)\d{2})\b")),
    Recogniser("date-apostrophe-year", DATE, _re(r"(?<![\d'])'(?P<phi>\d{2})\b(?!')")),
    # -- times (off by default, see the module docstring) --
    Recogniser("time", TIME, _re(rf"(?<![\w:]){_CLOCK}(?![\w:])")),
    # -- contact details --
    Recogniser(
        "phone",
        PHONE,
        _re(
            r"(?<![\w/.-])(?:\+?1[\s.-]*)?\(?\d{3}\)?[\s./-]{0,2}\d{3}[\s./-]{0,2}\d{4,5}"
            r"(?:\s*(?:x|ext\.?)\s*\d{1,5})?(?![\w/])"
        ),
    ),
    Recogniser("phone-short", PHONE, _re(r"(?<![\w/.-])\d{6}-\d{4}(?![\w/])")),  # "202232-4455"
    Recogniser("email", EMAIL, _re(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")),
    Recogniser("url", URL, _re(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]")),
    Recogniser("ip", IP, _re(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])"), _valid_ip),
    # -- identifiers --
    Recogniser(
        "id-labelled",
        ID,
        _re(
            r"\b(?:pager|pgr|pg|beeper|beep|mrn|mr\#|ref|record|acct|account|unit\s+no|ssn|id|medical\s+record)"
            r"\s*(?:no\.?|number|num|\#)?\s*[:\#]?\s*\#?\s*(?P<phi>[a-z]?\d[\d-]{3,}\d)\b"
        ),
    ),
    Recogniser("ssn", ID, _re(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")),
    Recogniser("id-long-number", ID, _re(r"(?<![\w.,/])\d{7,}(?![\w.,/])")),
    # -- ages over 89 (HIPAA: ages under 90 are not identifying) --
    Recogniser(
        "age-over-89",
        AGE,
        _re(
            r"\b(?P<phi>9\d|1[0-2]\d)\s*(?:-\s*)?(?:yo\b|y\.o\.?|y/o\b|yrs?\b(?:\s*old)?|years?(?:\s*|-)old\b|year-old\b)"
        ),
    ),
    Recogniser("age-aged", AGE, _re(r"\b(?:age|aged)\s*:?\s*(?P<phi>9\d|1[0-2]\d)\b")),
    # -- postal codes: after a US state code, or after the words "zip"/"postal code" --
    Recogniser(
        "zip",
        ZIP,
        _re(
            r"(?:\b(?:AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC"
            r"|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY),?\s+|\b(?:zip|postal)\s*(?:code)?\s*:?\s*)"
            r"(?P<phi>\d{5}(?:-\d{4})?)\b"
        ),
    ),
)

KINDS: tuple[str, ...] = (DATE, TIME, PHONE, EMAIL, URL, IP, ID, AGE, ZIP)
DEFAULT_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k != TIME)


class RuleRecogniser:
    """All recognisers of the chosen PHI kinds; ``find(text)`` gives their merged spans."""

    def __init__(self, kinds: Sequence[str] | None = None, *, exclude: Sequence[str] = ()) -> None:
        kinds = DEFAULT_KINDS if kinds is None else tuple(k.upper() for k in kinds)
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise InputError(f"unknown rule kinds {unknown}; known: {', '.join(KINDS)}", field="rules")
        names = {r.name for r in RECOGNISERS}
        bad = sorted(set(exclude) - names)
        if bad:
            raise InputError(f"unknown recognisers {bad}; known: {', '.join(sorted(names))}", field="rules")
        self.kinds = kinds
        self.recognisers = [r for r in RECOGNISERS if r.type in kinds and r.name not in exclude]

    def find_all(self, text: str) -> list[PhiSpan]:
        """Every match of every recogniser, unmerged (to score recognisers one by one)."""
        return [span for recogniser in self.recognisers for span in recogniser.find(text)]

    def find(self, text: str) -> list[PhiSpan]:
        return merge_spans(self.find_all(text))
