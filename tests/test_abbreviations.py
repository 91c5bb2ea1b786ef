"""Schwartz-Hearst abbreviation detection and propagation of long-form entities."""

import copy
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biotag.abbreviations import Abbreviation, annotate, detect, find_abbreviations, propagate
from biotag.document import Document, Link
from biotag.pipeline import Pipeline


def pairs(text: str) -> list[tuple[str, str]]:
    return [(text[a.short.start : a.short.end], text[a.long.start : a.long.end]) for a in find_abbreviations(text)]


# -- detection ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("Levels of tumor necrosis factor (TNF) rose.", [("TNF", "tumor necrosis factor")]),
        ("Levels of TNF (tumor necrosis factor) rose.", [("TNF", "tumor necrosis factor")]),  # reversed
        ("COPD (chronic obstructive pulmonary disease) patients", [("COPD", "chronic obstructive pulmonary disease")]),
        ("given 5-fluorouracil (5-FU) daily", [("5-FU", "5-fluorouracil")]),
        ("non-steroidal anti-inflammatory drugs (NSAIDs) are", [("NSAIDs", "non-steroidal anti-inflammatory drugs")]),
        ("heart rate (HR) and blood pressure (BP) fell", [("HR", "heart rate"), ("BP", "blood pressure")]),
        ("the angiotensin converting enzyme (ACE; EC 3.4.15.1) was", [("ACE", "angiotensin converting enzyme")]),  # cut at "; "
        # nested parentheses: matched with nesting, the inner one is not a definition
        (
            "the angiotensin-converting enzyme (ACE; EC 3.4.15.1 (peptidyl-dipeptidase A)) was",
            [("ACE", "angiotensin-converting enzyme")],
        ),
        # a definition inside a parenthetical remark: its long form stays inside
        ("cells were treated (in the presence of nitric oxide (NO)) twice", [("NO", "nitric oxide")]),
        # a short form holding parentheses
        ("interleukin 1 beta (IL-1(beta)) levels", [("IL-1(beta)", "interleukin 1 beta")]),
        # the long form does not reach back past a comma or a previous definition
        ("aspirin, tumor necrosis factor (TNF)", [("TNF", "tumor necrosis factor")]),
        ("glucose (Glc) and growth factor (GF)", [("Glc", "glucose"), ("GF", "growth factor")]),
    ],
)
def test_definitions_are_found_with_their_offsets(text, expected):
    assert pairs(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the difference was significant (p < 0.05) at day 3",  # no letters to match / too many words
        "twelve patients (n = 12) were included",
        "as shown before (see Fig. 1)",
        "published in Nature (2003)",  # no letter
        "serum testosterone (T) was low",  # one character
        "Ca(2+) channels",  # no space before the parenthesis: part of the word
        "a cytokine (tumornecrosisf) here",  # 13 characters: too long for a short form
        "alpha and x y z beta (AB) here",  # long form of 5 words, at most min(2+5, 2*2) = 4
        "alpha, beta (AB) here",  # the long form cannot reach past the comma
        "xa beta (AB) here",  # the first character must start a word
        "a human (in vitro) study",  # reversed needs a capital in the short form
        "an unclosed (TNF parenthesis",
        "tumor necrosis factor (TNF",
    ],
)
def test_non_definitions_give_no_pair(text):
    assert pairs(text) == []


def test_long_forms_stay_within_sentences_and_passages():
    doc = Document.from_passages("1", [("title", "Tumor necrosis factor."), ("abstract", "(TNF) rose. Heart rate (HR) too.")])
    assert [(doc.text[a.short.start : a.short.end], doc.text[a.long.start : a.long.end]) for a in detect(doc)] == [("HR", "Heart rate")]
    assert doc.sentences is None  # detection does not change the document


def test_annotate_records_pairs_in_metadata():
    doc = annotate(Document("1", "Levels of tumor necrosis factor (TNF) rose."))
    assert doc.metadata["abbreviations"] == [{"short": [33, 36], "long": [10, 31]}]
    assert Abbreviation.from_dict(doc.metadata["abbreviations"][0]).to_dict() == doc.metadata["abbreviations"][0]
    assert annotate(Document("2", "No definitions here.")).metadata["abbreviations"] == []


# -- propagation ---------------------------------------------------------------------------
TEXT = "TNF in sepsis. Tumor necrosis factor (TNF) rose, and TNF-alpha and TNFR and tnf did not; TNF fell."
MESH = Link("MESH", "D014409", "Tumor Necrosis Factor-alpha")


def tnf_doc(**long_form) -> Document:
    doc = Document("1", TEXT)
    doc.add_entity(15, 36, long_form.pop("type", "gene"), score=long_form.pop("score", 0.9), links=[MESH], **long_form)
    return doc


def spans_of(doc: Document, text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(re.escape(text), doc.text)]


def test_every_occurrence_of_the_short_form_inherits_type_and_links():
    doc = annotate(tnf_doc())
    added = [e for e in doc.entities if e.source == "abbreviations"]
    # the title mention before the definition, the definition itself, "TNF" of
    # "TNF-alpha" (a hyphen ends a word) and the last one; not "TNFR" nor "tnf"
    whole_words = [(m.start(), m.end()) for m in re.finditer(r"(?<!\w)TNF(?!\w)", TEXT)]
    assert [(e.start, e.end) for e in added] == whole_words
    assert ("TNFR" not in [e.text for e in added]) and ("tnf" not in [e.text for e in added])
    for e in added:
        assert e.type == "gene" and e.score == 0.9 and e.links == [MESH] and e.links[0] is not MESH
        assert e.attributes == {"abbreviation_of": "T1"}
    doc.validate()


def test_short_forms_inside_other_entities_are_not_added():
    doc = tnf_doc()
    alpha = doc.add_entity(*spans_of(doc, "TNF-alpha")[0], "gene", score=0.8)
    annotate(doc)
    assert not [e for e in doc.entities if e.source == "abbreviations" and e.span.overlaps(alpha.span)]


def test_links_are_copied_onto_same_type_short_forms_without_links_only():
    doc = tnf_doc()
    (s1, e1), (s2, e2) = spans_of(doc, "TNF")[0], spans_of(doc, "; TNF")[0]
    bare = doc.add_entity(s1, e1, "gene", score=0.7, source="ner")
    linked = doc.add_entity(s2 + 2, e2, "gene", score=0.7, source="ner", links=[Link("NCBIGene", "7124")])
    annotate(doc)
    assert bare.links == [MESH] and bare.source == "ner"
    assert linked.links == [Link("NCBIGene", "7124")]  # existing links are kept


def test_a_more_confident_long_form_retypes_the_short_form_and_a_weaker_one_does_not():
    doc = tnf_doc(score=0.95)
    s, e = spans_of(doc, "TNF")[0]
    chemical = doc.add_entity(s, e, "chemical", score=0.6, links=[Link("MESH", "D000001")])
    annotate(doc)
    assert chemical.type == "gene" and chemical.links == [MESH]
    assert chemical.attributes["abbreviation_retyped_from"] == "chemical"

    doc = tnf_doc(score=0.5)
    chemical = doc.add_entity(s, e, "chemical", score=0.6)
    unscored = doc.add_entity(*spans_of(doc, "; TNF")[0], "disease")  # gold / dictionary: no score
    annotate(doc)
    assert chemical.type == "chemical" and unscored.type == "disease" and unscored.start == spans_of(doc, "; TNF")[0][0]


def test_the_long_form_entity_is_its_head_not_a_modifier():
    text = "levodopa-induced dyskinesias (LID) and poly(ADP-ribose) polymerase (PARP); LID and PARP."
    doc = Document("1", text)
    for piece, etype in (("levodopa", "chemical"), ("dyskinesias", "disease"), ("poly(ADP-ribose)", "chemical")):
        doc.add_entity(*spans_of(doc, piece)[0], etype, score=0.9)
    annotate(doc)
    assert {e.text: e.type for e in doc.entities if e.source == "abbreviations"} == {"LID": "disease"}


def test_an_entity_reaching_over_the_short_form_is_not_its_long_form():
    doc = Document("1", "angiotensin converting enzyme (ACE) inhibitors lower ACE activity.")
    doc.add_entity(0, 46, "chemical", score=0.9)  # "... (ACE) inhibitors"
    annotate(doc)
    assert len(doc.entities) == 1


# -- never delete (the Kazu bug) ----------------------------------------------------------------
def test_short_forms_without_a_confident_long_form_keep_their_entities():
    text = "BRCA1 (breast cancer 1) carriers. Hereditary breast cancer in BRCA1 carriers (BRCA1)."
    doc = Document("1", text)
    genes = [doc.add_entity(s, e, "gene", score=0.8, source="ner") for s, e in spans_of(doc, "BRCA1")]
    disease = doc.add_entity(*spans_of(doc, "breast cancer")[0], "disease", score=0.95, source="ner")
    before = copy.deepcopy(doc.entities)
    annotate(doc)
    assert doc.metadata["abbreviations"]  # BRCA1 (breast cancer 1) was found...
    assert doc.entities == before  # ...but "breast cancer" is not its long form's head: nothing changes
    assert all(g.type == "gene" for g in genes) and disease.type == "disease"


WORDS = ["TNF", "BRCA1", "IL-6", "tumor", "necrosis", "factor", "(", ")", "(TNF)", "(IL-6)", "interleukin", "6", ",", "."]


@st.composite
def documents_with_entities(draw):
    text = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=30)))
    doc = Document("p", text)
    for _ in range(draw(st.integers(0, 6))):
        start = draw(st.integers(0, len(text) - 1))
        end = draw(st.integers(start + 1, min(len(text), start + 25)))
        score = draw(st.one_of(st.none(), st.floats(0, 1)))
        doc.add_entity(start, end, draw(st.sampled_from(["gene", "chemical", "disease"])), score=score)
    return doc


@settings(max_examples=150, deadline=None)
@given(documents_with_entities())
def test_propagation_never_removes_or_moves_an_entity(doc):
    before = [(e.id, e.spans, e.type, e.score) for e in doc.entities]
    annotate(doc)
    after = {e.id: e for e in doc.entities}
    for entity_id, spans, etype, score in before:
        kept = after[entity_id]
        assert kept.spans == spans and kept.score == score
        assert kept.type == etype or "abbreviation_retyped_from" in kept.attributes
    new = [e for e in doc.entities if e.id not in {b[0] for b in before}]
    assert all(e.source == "abbreviations" for e in new)
    doc.validate()


# -- on real abstracts ---------------------------------------------------------------------------
def test_gold_long_forms_recover_gold_short_forms_on_bc5cdr(shared_data):
    """Strip gold mentions of abbreviations defined in the text; propagation from the gold
    long forms must bring most of them back, with their type and MeSH IDs."""
    from biotag import io

    path = shared_data / "pubtator" / "bc5cdr" / "CDR_DevelopmentSet.PubTator.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    n_gold = recovered = added = wrong = 0
    for gold in io.read(path, "pubtator"):
        defined = {e.text for e in gold.entities if re.search(r"\(\s*" + re.escape(e.text) + r"\s*[);,]", gold.text)}
        wanted = {(e.start, e.end, e.type, frozenset((x.ontology, x.id) for x in e.links)) for e in gold.entities if e.text in defined}
        doc = copy.deepcopy(gold)
        doc.entities = [e for e in doc.entities if e.text not in defined]
        new = {(e.start, e.end, e.type, frozenset((x.ontology, x.id) for x in e.links)) for e in propagate(doc, detect(doc))}
        n_gold, recovered, added, wrong = n_gold + len(wanted), recovered + len(wanted & new), added + len(new), wrong + len(new - wanted)
    assert n_gold > 1000
    assert recovered / n_gold > 0.75  # 77% measured; most of the rest are synonyms, not abbreviations
    assert 1 - wrong / added > 0.93


def test_abbreviations_step_in_a_pipeline_is_idempotent():
    pipeline = Pipeline.from_config({"steps": ["abbreviations"]})
    doc = tnf_doc()
    pipeline([doc])
    once = copy.deepcopy(doc.entities)
    pipeline([doc])
    assert doc.entities == once
