"""De-identified output: tags and surrogates, the offset map, and the guarantees that no
detected PHI string survives and no surrogate brings one in (hypothesis-driven)."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biotag.deid.redact import DeidError, deidentify_text, propagate
from biotag.deid.spans import PhiSpan, merge_spans
from biotag.deid.surrogates import Forbidden, Surrogates

NOTE = "Son Radu called 7/22. RADU will visit 7/25; call Radu Lange at 201-561-8910."


def spans_of(text, *pieces, kind="PHI"):
    out = []
    for piece in pieces:
        i = text.index(piece)
        out.append(PhiSpan(i, i + len(piece), kind, "test"))
    return out


def check_offsets(original, result):
    """Replaced regions map onto their replacements; kept text maps onto itself."""
    pos_in, pos_out = 0, 0
    for r in result.replacements:
        assert original[pos_in : r.start] == result.text[pos_out : r.out_start]
        assert r.start - pos_in == r.out_start - pos_out
        assert result.to_output(r.start) == r.out_start and result.to_original(r.out_start) == r.start
        pos_in, pos_out = r.end, r.out_end
    assert original[pos_in:] == result.text[pos_out:]
    for i in range(len(original) + 1):  # every kept offset maps there and back
        if not any(r.start <= i < r.end for r in result.replacements):
            assert result.to_original(result.to_output(i)) == i


def test_tag_mode_replaces_every_occurrence_with_its_type():
    spans = spans_of(NOTE, "Radu", "7/22", "201-561-8910")
    spans[1] = PhiSpan(spans[1].start, spans[1].end, "DATE", "rules")
    spans[2] = PhiSpan(spans[2].start, spans[2].end, "PHONE", "rules")
    result = deidentify_text(NOTE, spans, "tag")
    assert result.text == "Son [PHI] called [DATE]. [PHI] will visit 7/25; call [PHI] Lange at [PHONE]."
    check_offsets(NOTE, result)


def test_surrogate_mode_is_consistent_and_shifts_dates_together():
    spans = spans_of(NOTE, "Radu", "Lange") + spans_of(NOTE, "7/22", "7/25", kind="DATE")
    result = deidentify_text(NOTE, spans, "surrogate", Surrogates("p", seed=5))
    words = dict(zip(("first", "upper", "third"), [result.text[r.out_start : r.out_end] for r in result.replacements if r.type == "PHI"][:3]))
    assert words["first"] == words["third"] and words["upper"] == words["first"].upper()
    dates = [result.text[r.out_start : r.out_end] for r in result.replacements if r.type == "DATE"]
    m1, d1 = map(int, dates[0].split("/"))
    m2, d2 = map(int, dates[1].split("/"))
    from datetime import date

    assert (date(2000, m2, d2) - date(2000, m1, d1)).days == 3
    check_offsets(NOTE, result)
    assert "Radu" not in result.text and "RADU" not in result.text and "Lange" not in result.text


def test_propagation_finds_other_occurrences_as_whole_words_only():
    text = "Ann saw Annette; ann left."
    found = propagate(text, spans_of(text, "Ann"))
    assert [text[s.start : s.end] for s in found] == ["Ann", "ann"]


def test_a_seam_that_spells_a_detected_string_is_repaired():
    # "Ann Smith" is PHI; replacing only "Bob" in "Ann Bob" by a surrogate "Smith" would
    # spell it: the replacement must fall back to something else.
    text = "Ann Smith came. Ann Bob too."
    spans = spans_of(text, "Ann Smith") + [PhiSpan(text.index("Bob"), text.index("Bob") + 3, "PHI", "t")]

    class Mean(Surrogates):
        def get(self, original, kind, forbidden):  # a surrogate table that would leak if trusted
            return "Smith" if original == "Bob" else "Zed"

    result = deidentify_text(text, spans, "surrogate", Mean("k"))
    assert not re.search(r"\bann smith\b", result.text, re.IGNORECASE)
    check_offsets(text, result)


def test_merge_takes_the_union_and_the_specific_type():
    merged = merge_spans([PhiSpan(0, 5, "PHI", "model"), PhiSpan(3, 9, "DATE", "rules"), PhiSpan(9, 12, "PHI", "model")])
    assert [(s.start, s.end, s.type) for s in merged] == [(0, 9, "DATE"), (9, 12, "PHI")]
    assert merged[0].source == "model+rules"


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError):
        deidentify_text("x", [], "blur")


WORDS = ["Ann", "ann", "Bob", "7/22", "Smith", "the", "pt", "201-555-0100", "QUARTERMAIN", "2", "x", "Ann Smith", "-", "[PHI]", "PHI"]


@st.composite
def notes_with_spans(draw):
    parts = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=25))
    seps = draw(st.lists(st.sampled_from([" ", "  ", "\n", ", ", "", "."]), min_size=len(parts), max_size=len(parts)))
    text = "".join(p + s for p, s in zip(parts, seps))
    n = len(text)
    raw = draw(st.lists(st.tuples(st.integers(0, n), st.integers(1, 12), st.sampled_from(["PHI", "DATE", "NAME"])), max_size=6))
    spans = [PhiSpan(a, min(n, a + k), t, "h") for a, k, t in raw if a < n and text[a : min(n, a + k)].strip()]
    return text, spans


@settings(max_examples=300, deadline=None)
@given(notes_with_spans(), st.sampled_from(["tag", "surrogate"]), st.integers(0, 5))
def test_no_detected_phi_survives_and_none_is_added(case, mode, seed):
    text, spans = case
    try:
        result = deidentify_text(text, spans, mode, Surrogates("k", seed=seed))
    except DeidError:
        return  # refusing to output is allowed; leaking is not
    detected = propagate(text, spans)
    forbidden = Forbidden(text[s.start : s.end] for s in detected)
    assert forbidden.find(result.text) == []  # not one detected string, anywhere, as a word
    for s in detected:  # every detected span (after repairs, inside a replaced region) is gone
        assert any(r.start <= s.start and s.end <= r.end for r in result.replacements)
    for r in result.replacements:  # no replacement equals an original PHI string
        new = result.text[r.out_start : r.out_end]
        assert not new.strip() or " ".join(new.split()).lower() not in forbidden.strings
    check_offsets(text, result)
