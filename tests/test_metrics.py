import json
import math
import random
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report

from biotag.document import Document
from biotag.entity_types import default_type_map
from biotag.errors import InputError
from biotag.labels import TokenSpan, spans_from_tags, tags_from_spans
from biotag.metrics import Report, TypeScore, score_documents, score_spans, score_tags


# -- helpers ------------------------------------------------------------------
def read_iob_tags(path: Path) -> list[list[str]]:
    """The tag column of a two-column IOB file, one list per sentence (no -DOCSTART-)."""
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if current:
                sentences.append(current)
            current = []
            continue
        token, tag = line.split("\t")
        if token != "-DOCSTART-":
            current.append(tag)
    if current:
        sentences.append(current)
    return sentences


def perturb(gold: list[list[str]], types: list[str], seed: int) -> list[list[str]]:
    """Deterministic fake predictions: entities dropped, boundaries shifted, types
    swapped, spurious entities added, and a few raw tag flips that leave I- tags
    without a B- (which the chunker must treat as seqeval does)."""
    rng = random.Random(seed)
    swap_to = types + ["Other"]
    pred = []
    for tags in gold:
        n = len(tags)
        spans = []
        for s in spans_from_tags(tags):
            r = rng.random()
            if r < 0.08:
                continue  # dropped
            start, end, entity_type = s
            if r < 0.16:
                start = min(max(0, start + rng.choice((-1, 1))), end - 1)
            elif r < 0.24:
                end = max(min(n, end + rng.choice((-1, 1))), start + 1)
            elif r < 0.30:
                entity_type = rng.choice([t for t in swap_to if t != entity_type])
            spans.append(TokenSpan(start, end, entity_type))
        if n and rng.random() < 0.15:
            start = rng.randrange(n)
            spans.append(TokenSpan(start, min(n, start + rng.randint(1, 3)), rng.choice(swap_to)))
        out = tags_from_spans(n, spans)
        for i, tag in enumerate(out):
            if tag.startswith("B-") and rng.random() < 0.05:
                out[i] = "I-" + tag[2:]
        pred.append(out)
    return pred


def assert_same_as_seqeval(report: Report, gold: list[list[str]], pred: list[list[str]]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = classification_report(gold, pred, output_dict=True, zero_division=0)
    averages = {"micro avg": report.micro, "macro avg": report.macro}
    assert set(report.types) == set(expected) - {"micro avg", "macro avg", "weighted avg"}
    for name, expected_scores in expected.items():
        if name == "weighted avg":
            continue
        got = averages.get(name) or report.per_type[name]
        for ours, theirs in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"), ("support", "support")):
            value = float(expected_scores[theirs])
            if math.isnan(value):  # seqeval's macro average of an empty report; biotag reports 0
                value = 0.0
            assert getattr(got, ours) == pytest.approx(value, abs=1e-12), (name, ours)


# -- score_spans ----------------------------------------------------------------
def test_score_spans_counts_strict_matches_per_type():
    gold = [("s1", 0, 2, "Disease"), ("s1", 5, 6, "Chemical"), ("s2", 1, 3, "Disease"), ("s2", 4, 5, "Disease")]
    pred = [
        ("s1", 0, 2, "Disease"),  # right
        ("s1", 5, 7, "Chemical"),  # wrong boundary: one FP and one FN
        ("s2", 1, 3, "Chemical"),  # wrong type: FP for Chemical, FN for Disease
        ("s2", 4, 5, "Disease"),  # right
    ]
    report = score_spans(gold, pred)
    assert report.types == ["Chemical", "Disease"]
    assert report.per_type["Disease"] == TypeScore(1.0, 2 / 3, 0.8, support=3, tp=2, fp=0, fn=1)
    assert report.per_type["Chemical"] == TypeScore(0.0, 0.0, 0.0, support=1, tp=0, fp=2, fn=1)
    assert (report.micro.tp, report.micro.fp, report.micro.fn, report.micro.support) == (2, 2, 2, 4)
    assert report.micro.precision == 0.5 and report.micro.recall == 0.5 and report.micro.f1 == 0.5
    assert report.macro.precision == pytest.approx(0.5) and report.macro.f1 == pytest.approx(0.4)


def test_score_spans_same_offsets_in_other_unit_do_not_match():
    report = score_spans([("doc1", 0, 4, "gene")], [("doc2", 0, 4, "gene")])
    assert (report.micro.tp, report.micro.fp, report.micro.fn) == (0, 1, 1)


def test_score_spans_counts_repeated_entities_once_like_seqeval():
    report = score_spans([("s", 0, 1, "A")] * 2, [("s", 0, 1, "A"), ("s", 0, 1, "A"), ("s", 2, 3, "A")])
    assert (report.micro.tp, report.micro.fp, report.micro.fn) == (1, 1, 0)


def test_score_spans_empty_input_gives_zeros_not_nan():
    report = score_spans([], [])
    assert report.per_type == {}
    assert report.micro == report.macro == TypeScore(0.0, 0.0, 0.0, 0, 0, 0, 0)
    json.dumps(report.to_dict(), allow_nan=False)


def test_score_spans_rejects_malformed_tuples():
    with pytest.raises(InputError, match=r"predicted span #1 .*\(unit_key, start, end, type\)"):
        score_spans([], [("s", 0, 1, "A"), ("s", 0, 1)])
    with pytest.raises(InputError, match="gold span #0"):
        score_spans([("s", [0], 1, "A")], [])


# -- score_tags vs seqeval ---------------------------------------------------------
@pytest.mark.parametrize("corpus,seed", [("NCBI-disease", 1), ("BC5CDR", 2)])
def test_score_tags_equals_seqeval_on_real_test_sets(shared_data, corpus, seed):
    gold = read_iob_tags(shared_data / "ner" / corpus / "test.tsv")
    types = sorted({tag[2:] for tags in gold for tag in tags if tag != "O"})
    pred = perturb(gold, types, seed)
    report = score_tags(gold, pred)
    assert_same_as_seqeval(report, gold, pred)
    # the perturbations really happened and hit every kind of error
    assert 0.6 < report.micro.f1 < 0.95
    assert "Other" in report.per_type and report.per_type["Other"].support == 0
    # the same entities given as spans score the same
    as_spans = [[(i, s.start, s.end, s.type) for s in spans_from_tags(t)] for i, t in enumerate(gold)]
    pred_spans = [[(i, s.start, s.end, s.type) for s in spans_from_tags(t)] for i, t in enumerate(pred)]
    assert score_spans(sum(as_spans, []), sum(pred_spans, [])) == report


def test_score_tags_perfect_prediction_scores_one(shared_data):
    gold = read_iob_tags(shared_data / "ner" / "NCBI-disease" / "test.tsv")
    report = score_tags(gold, gold)
    assert report.per_type["Disease"].support == 960  # MANIFEST: 960 test entities
    assert report.micro.f1 == report.macro.f1 == 1.0


TAGS = st.sampled_from(["O", "O", "B-A", "I-A", "B-B", "I-B", "I-C", "E-A", "S-B"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.tuples(TAGS, TAGS), max_size=12), min_size=1, max_size=6))  # seqeval needs a sentence
def test_score_tags_equals_seqeval_on_random_sequences(sentences):
    gold = [[g for g, _ in sentence] for sentence in sentences]
    pred = [[p for _, p in sentence] for sentence in sentences]
    assert_same_as_seqeval(score_tags(gold, pred), gold, pred)


def test_score_tags_rejects_mismatched_input():
    with pytest.raises(InputError, match="2 gold sentences but 1 predicted"):
        score_tags([["O"], ["O"]], [["O"]])
    with pytest.raises(InputError, match="sentence 1: 2 gold tags but 1 predicted"):
        score_tags([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(InputError, match="predicted sentence 0: unknown tag 'Disease'"):
        score_tags([["B-Disease"]], [["Disease"]])


# -- score_documents ------------------------------------------------------------
def make_doc(doc_id: str, text: str, *entities) -> Document:
    doc = Document(doc_id, text)
    for spans, entity_type in entities:
        doc.add_entity(spans, type=entity_type)
    return doc


TEXT = "BRCA1 mutations cause breast cancer in mice treated with aspirin."


def gold_docs():
    return [
        make_doc("1", TEXT, ([(0, 5)], "GeneOrGeneProduct"), ([(22, 35)], "DiseaseOrPhenotypicFeature"), ([(39, 43)], "OrganismTaxon")),
        make_doc("2", "Aspirin helps.", ([(0, 7)], "ChemicalEntity")),
    ]


def test_score_documents_matches_offsets_and_types():
    pred = [make_doc("1", TEXT, ([(0, 5)], "GeneOrGeneProduct"), ([(29, 35)], "DiseaseOrPhenotypicFeature"), ([(57, 64)], "ChemicalEntity"))]
    report = score_documents(gold_docs(), pred)
    assert report.per_type["GeneOrGeneProduct"].tp == 1
    assert (report.per_type["DiseaseOrPhenotypicFeature"].fp, report.per_type["DiseaseOrPhenotypicFeature"].fn) == (1, 1)
    # document 2 has no prediction: its chemical is a false negative, next to the FP in document 1
    assert report.per_type["ChemicalEntity"] == TypeScore(0.0, 0.0, 0.0, support=1, tp=0, fp=1, fn=1)
    assert report.micro.support == 4


def test_score_documents_type_map_and_types_restrict_to_a_corpus():
    # an all-types model scored on a disease corpus: its chemical and species are ignored
    pred = [
        make_doc("1", TEXT, ([(0, 5)], "gene"), ([(22, 35)], "disease"), ([(57, 64)], "chemical")),
        make_doc("2", "Aspirin helps.", ([(0, 7)], "chemical")),
    ]
    report = score_documents(gold_docs(), pred, type_map=default_type_map(), types={"disease", "gene"})
    assert report.types == ["disease", "gene"]
    assert report.micro.f1 == 1.0
    # without a restriction the unmatched gold species and the predicted chemicals count
    full = score_documents(gold_docs(), pred, type_map=default_type_map())
    assert full.per_type["species"].fn == 1 and full.per_type["chemical"].tp == 1 and full.per_type["chemical"].fp == 1


def test_a_model_with_its_own_protein_type_is_scored_on_jnlpba_protein_by_it():
    from biotag.evaluation import corpus_scoring

    text = "IL-2 binds the IL-2 receptor."
    gold = [make_doc("1", text, ([(0, 4)], "protein"), ([(15, 28)], "protein"))]
    # the gene head (another guideline) tags only IL-2; the protein head both proteins
    pred = [make_doc("1", text, ([(0, 4)], "gene"), ([(0, 4)], "protein"), ([(15, 28)], "protein"))]
    types, type_map = corpus_scoring("jnlpba", ["gene", "protein", "dna", "rna", "cell_line", "cell_type"])
    assert "protein" in types and "gene" not in types
    report = score_documents(gold, pred, types=types, type_map=type_map)
    assert report.types == ["protein"] and report.micro.f1 == 1.0  # gene predictions are not JNLPBA's to judge
    # a model of unified types: JNLPBA's protein is gene, and that model's gene is scored
    types, type_map = corpus_scoring("jnlpba", ["gene", "dna", "rna", "cell_line", "cell_type"])
    report = score_documents(gold, pred[:1], types=types, type_map=type_map)
    assert report.types == ["gene"] and (report.micro.tp, report.micro.fp, report.micro.fn) == (2, 0, 0)


def test_score_documents_plain_dict_renames_and_none_drops():
    pred = [make_doc("1", TEXT, ([(0, 5)], "Gene"))]
    mapping = {"GeneOrGeneProduct": "Gene", "OrganismTaxon": None}
    report = score_documents(gold_docs(), pred, type_map=mapping)
    assert report.per_type["Gene"].tp == 1
    assert "OrganismTaxon" not in report.per_type and "ChemicalEntity" in report.per_type


def test_score_documents_unknown_label_under_strict_type_map_names_document():
    pred = [make_doc("2", "Aspirin helps.", ([(0, 7)], "Drug"))]
    with pytest.raises(InputError, match=r"document 2: field 'type': entity T1: entity label 'Drug'"):
        score_documents(gold_docs(), pred, type_map=default_type_map())


def test_score_documents_rejects_unknown_or_changed_documents():
    with pytest.raises(InputError, match="document 99: field 'id': predicted document is not in the gold standard"):
        score_documents(gold_docs(), [make_doc("99", "x")])
    with pytest.raises(InputError, match="document 2: field 'id': predicted 2 times but only 1"):
        score_documents(gold_docs(), [make_doc("2", "Aspirin helps."), make_doc("2", "Aspirin helps.")])
    with pytest.raises(InputError, match="document 2: field 'text'"):
        score_documents(gold_docs(), [make_doc("2", "Aspirin hurts.")])
    with pytest.raises(InputError, match="not the string 'gene'"):
        score_documents(gold_docs(), [], types="gene")


def test_score_documents_pairs_repeated_ids_in_order():
    # NCBI-disease's training file holds one PMID twice: the k-th copy pairs with the k-th
    gold = [make_doc("8528200", "AT gene", ([(0, 2)], "Disease")), make_doc("8528200", "AT gene", ([(0, 2)], "Disease"))]
    report = score_documents(gold, [make_doc("8528200", "AT gene", ([(0, 2)], "Disease"))])
    assert (report.micro.tp, report.micro.fn) == (1, 1)


def test_score_documents_discontinuous_entities_need_every_fragment():
    text = "breast and ovarian cancer"
    gold = [make_doc("d", text, ([(0, 6), (19, 25)], "disease"), ([(11, 25)], "disease"))]
    pred = [make_doc("d", text, ([(0, 25)], "disease"), ([(11, 25)], "disease"))]
    report = score_documents(gold, pred)
    assert (report.micro.tp, report.micro.fp, report.micro.fn) == (1, 1, 1)
    textless = Document("d", "")  # predictions without text are matched by id alone
    textless.entities = [e for e in gold[0].entities]
    assert score_documents(gold, [textless]).micro.f1 == 1.0


# -- Report -------------------------------------------------------------------------
def example_report() -> Report:
    return score_spans(
        [("s", 0, 1, "disease"), ("s", 2, 3, "disease"), ("s", 4, 5, "chemical")],
        [("s", 0, 1, "disease"), ("s", 4, 5, "disease"), ("s", 6, 7, "cell_line")],
    )


def test_report_json_round_trip():
    report = example_report()
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert Report.from_dict(data) == report
    assert data["types"]["disease"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2, "tp": 1, "fp": 1, "fn": 1}


def test_report_from_dict_rejects_malformed_data():
    with pytest.raises(InputError, match="needs the keys"):
        Report.from_dict({"types": {}})
    data = example_report().to_dict()
    del data["types"]["disease"]["tp"]
    with pytest.raises(InputError, match="field 'types.disease'.*KeyError"):
        Report.from_dict(data)


def test_format_table_shows_percentages_and_counts_in_aligned_columns():
    table = example_report().format_table()
    lines = table.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1", "support", "tp", "fp", "fn"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:] if line.strip() and not line.strip().startswith(("micro", "macro"))}
    assert rows["disease"] == ["50.00", "50.00", "50.00", "2", "1", "1", "1"]
    assert rows["cell_line"] == ["0.00", "0.00", "0.00", "0", "0", "1", "0"]
    micro = next(line for line in lines if line.strip().startswith("micro avg")).split()[2:]
    assert micro == ["33.33", "33.33", "33.33", "3", "1", "2", "2"]
    assert len({len(line) for line in lines if line}) == 1  # fixed width
    assert str(example_report()) == table
