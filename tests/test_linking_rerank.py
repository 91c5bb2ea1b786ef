"""The learned linking re-ranker: training loop, re-ranking, saving and loading.

A tiny random BERT (tests/helpers.py) stands in for MiniLM; a hand-made word-vector
encoder makes the re-ranking test exact."""

import json
from pathlib import Path

import numpy as np
import pytest

from biotag.errors import FormatError, InputError
from biotag.linking import Concept, Linker, build_index
from biotag.linking.rerank import CONFIG_FILE, BiEncoder, EmbeddingReranker, load_reranker, read_config
from biotag.linking.rerank_train import (
    Example,
    RerankTrainConfig,
    add_negatives,
    dictionary_examples,
    mention_examples,
    train_reranker,
)

CONCEPTS = [
    Concept("MESH:D051437", "Renal Insufficiency", ("Kidney Insufficiency", "Kidney Failure"), ("disease",)),
    Concept("MESH:D006333", "Heart Failure", ("Cardiac Failure",), ("disease",)),
    Concept("MESH:D007669", "Kidney Calculi", ("Kidney Stones",), ("disease",)),
    Concept("MESH:D007674", "Kidney Diseases", ("Nephropathy",), ("disease",)),
]
# the same ontology without "Kidney Failure": the string matcher gets that mention wrong
WITHOUT_SYNONYM = [CONCEPTS[0].__class__("MESH:D051437", "Renal Insufficiency", ("Kidney Insufficiency",), ("disease",)), *CONCEPTS[1:]]


class WordVectors:
    """An encoder whose vector of a text is the normalised sum of one-hot meanings of
    its words (kidney = renal, failure = insufficiency, ...)."""

    MEANING = {"kidney": 0, "kidneys": 0, "renal": 0, "failure": 1, "insufficiency": 1, "heart": 2, "cardiac": 2, "stones": 3, "calculi": 3, "diseases": 4, "nephropathy": 4}

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), 6), np.float32)
        for i, text in enumerate(texts):
            for word in text.split():
                out[i, self.MEANING.get(word, 5)] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def toy_index(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rerank-index")
    build_index("toy", WITHOUT_SYNONYM, out)
    return out


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    from helpers import make_tiny_encoder

    return make_tiny_encoder(tmp_path_factory.mktemp("rerank-encoder") / "encoder")


def test_reranking_moves_the_right_concept_to_the_top(toy_index):
    plain = Linker(toy_index)
    assert plain.candidates("kidney failure", "disease", 5)[0].id == "MESH:D006333"  # 3-grams: "heart failure"
    reranker = EmbeddingReranker(WordVectors(), weight=0.7)
    linker = Linker(toy_index, reranker=reranker)
    found = linker.candidates("kidney failure", "disease", 5)
    assert found[0].id == "MESH:D051437" and found[0].name == "Renal Insufficiency"
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
    assert 0.0 <= found[-1].score <= found[0].score <= 1.0
    # the plain linker's cached candidates are not changed by another linker's re-ranking
    assert plain.candidates("kidney failure", "disease", 5)[0].id == "MESH:D006333"


def test_weight_zero_keeps_the_string_order_and_exact_matches_skip_the_reranker(toy_index):
    encoder = WordVectors()
    linker = Linker(toy_index, reranker=EmbeddingReranker(encoder, weight=0.0))
    assert linker.candidates("kidney failure", "disease", 5)[0].id == "MESH:D006333"
    calls = encoder.calls
    assert linker.candidates("nephropathy", "disease", 1)[0].stage == "exact"
    assert encoder.calls == calls
    # a re-ranker trained for other types leaves the order alone
    other = Linker(toy_index, reranker=EmbeddingReranker(WordVectors(), weight=0.7, info={"types": ["chemical"]}))
    assert other.candidates("kidney failure", "disease", 5)[0].id == "MESH:D006333"
    with pytest.raises(InputError):
        EmbeddingReranker(encoder, weight=1.5)


def test_name_embeddings_are_cached():
    encoder = WordVectors()
    reranker = EmbeddingReranker(encoder)
    first = reranker.vectors(["renal failure", "heart failure"])
    again = reranker.vectors(["heart failure", "renal failure"])
    assert encoder.calls == 1
    np.testing.assert_allclose(first[::-1], again)


def test_mining_pairs_mentions_and_hard_negatives(tmp_path):
    import random

    build_index("toy", CONCEPTS, tmp_path)
    index = Linker(tmp_path).indexes[0]
    pairs = dictionary_examples(index, random.Random(0), per_concept=2, max_concepts=10)
    assert pairs and all(e.query != e.positive for e in pairs)
    names = {"MESH:D051437": {"renal insufficiency", "kidney insufficiency", "kidney failure"}}
    assert all({e.query, e.positive} <= names[e.concept] for e in pairs if e.concept == "MESH:D051437")
    mentions = mention_examples(index, [("Renal failure", "MESH:D051437"), ("x", "MESH:UNKNOWN")], random.Random(0), copies=2)
    assert [e.query for e in mentions] == ["renal failure", "renal failure"] and mentions[0].positive == "renal insufficiency"
    add_negatives(index, mentions, 2)
    for example in mentions:
        assert example.negatives and len(example.negatives) == len(example.negative_concepts)
        assert "MESH:D051437" not in example.negative_concepts  # never a name of its own concept


def _toy_examples() -> list[Example]:
    return [
        Example("kidney failure", "renal insufficiency", "A", ["heart failure"], ["B"]),
        Example("cardiac failure", "heart failure", "B", ["kidney failure"], ["A"]),
        Example("kidney stones", "kidney calculi", "C", ["kidney diseases"], ["D"]),
        Example("nephropathy", "kidney diseases", "D", ["kidney stones"], ["C"]),
    ]


def _margin(encoder: BiEncoder) -> float:
    """cos(query, positive) - cos(query, negative), averaged over the toy examples."""
    out = []
    for e in _toy_examples():
        v = encoder.encode([e.query, e.positive, e.negatives[0]])
        out.append(float(v[0] @ v[1] - v[0] @ v[2]))
    return float(np.mean(out))


def test_training_lowers_the_loss_then_saves_a_loadable_reranker(tiny_encoder, tmp_path):
    before = _margin(BiEncoder.from_pretrained(tiny_encoder))
    config = RerankTrainConfig(encoder=str(tiny_encoder), steps=30, batch_size=4, learning_rate=3e-3, warmup=0.1, log_every=1, checkpoint_every=10, threads=1)
    out = tmp_path / "reranker"
    assert train_reranker(out, config, examples=_toy_examples())
    losses = [json.loads(line)["loss"] for line in (out / "train-log.jsonl").read_text().splitlines()]
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    reranker = EmbeddingReranker.load(out)
    assert _margin(reranker.encoder) > before
    config_file = read_config(out)
    assert config_file["kind"] == "biotag-linking-reranker" and config_file["training"]["steps"] == 30
    # round trip: the saved model embeds exactly as the trained one did
    again = load_reranker(out, weight=0.25)
    assert again.weight == 0.25
    texts = ["kidney failure", "renal insufficiency"]
    np.testing.assert_allclose(again.encoder.encode(texts), reranker.encoder.encode(texts), atol=1e-6)


def test_training_resumes_from_its_checkpoint(tiny_encoder, tmp_path):
    config = RerankTrainConfig(encoder=str(tiny_encoder), steps=4, batch_size=4, log_every=1, checkpoint_every=2, threads=1)
    out = tmp_path / "r"
    assert train_reranker(out, config, examples=_toy_examples())
    config.steps = 6
    train_reranker(out, config, examples=_toy_examples())
    steps = [json.loads(line)["step"] for line in (out / "train-log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_linker_and_pipeline_step_load_a_reranker_directory(tiny_encoder, toy_index, tmp_path):
    from biotag.pipeline.registry import build_step
    from biotag.document import Document

    directory = BiEncoder.from_pretrained(tiny_encoder).save(tmp_path / "r", {"weight": 0.3})
    linker = Linker(toy_index, reranker=str(directory))
    assert isinstance(linker.reranker, EmbeddingReranker) and linker.reranker.weight == 0.3
    step = build_step("linking", {"index_dir": str(toy_index), "reranker": str(directory)})
    doc = Document("d", "Kidney failure.")
    doc.add_entity(0, 14, "disease")
    step([doc])
    assert not doc.errors and doc.entities[0].links


@pytest.mark.parametrize(
    "content, error",
    [
        (None, InputError),
        ("{not json", FormatError),
        ('{"kind": "biotag-linking-reranker", "format": 99}', FormatError),
        ('{"kind": "biotag-linking-reranker", "format": 1, "weight": 2}', FormatError),
    ],
)
def test_bad_reranker_directories_are_clear_errors(tmp_path, content, error):
    if content is not None:
        (tmp_path / CONFIG_FILE).write_text(content)
    with pytest.raises(error) as caught:
        read_config(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_candidates_are_compared_by_all_their_names_when_the_linker_provides_them(tmp_path):
    build_index("toy", CONCEPTS, tmp_path)
    reranker = EmbeddingReranker(WordVectors())
    linker = Linker(tmp_path, reranker=reranker)
    candidate = linker.candidates("renal failure", "disease", 1)[0]
    assert candidate.id == "MESH:D051437"
    assert set(reranker.names(candidate)) == {candidate.matched, "renal insufficiency", "kidney insufficiency", "kidney failure"}
    reranker.max_names = 2
    assert set(reranker.names(candidate)) == {candidate.matched, "renal insufficiency"}


class RecordingReranker:
    """Reverses the candidates it is given and remembers how many it saw."""

    pool = 2

    def __init__(self) -> None:
        self.seen: list[int] = []

    def rerank(self, mention, entity_type, candidates):
        self.seen.append(len(candidates))
        return candidates[::-1]


def test_the_linker_hands_the_reranker_its_pool_and_keeps_the_rest_in_string_order(toy_index):
    plain = [c.id for c in Linker(toy_index).candidates("kidney failure", "disease", 4)]
    reranker = RecordingReranker()
    found = [c.id for c in Linker(toy_index, reranker=reranker).candidates("kidney failure", "disease", 4)]
    assert reranker.seen == [2]
    assert len(plain) == 4 and found == [plain[1], plain[0], *plain[2:]]


def test_a_time_limit_stops_at_a_checkpoint_and_the_next_call_finishes(tiny_encoder, tmp_path):
    config = RerankTrainConfig(encoder=str(tiny_encoder), steps=5, batch_size=4, log_every=1, checkpoint_every=100, threads=1)
    out = tmp_path / "r"
    assert not train_reranker(out, config, examples=_toy_examples(), max_seconds=0.0)
    assert (out / "checkpoint").is_dir() and not (out / CONFIG_FILE).exists()
    assert train_reranker(out, config, examples=_toy_examples())
    steps = [json.loads(line)["step"] for line in (out / "train-log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5]
    # tuned settings survive saving the finished run again
    settings = {**json.loads((out / CONFIG_FILE).read_text()), "weight": 0.3, "pool": 5, "names": 2}
    (out / CONFIG_FILE).write_text(json.dumps(settings))
    assert train_reranker(out, config, examples=_toy_examples())
    reranker = EmbeddingReranker.load(out)
    assert (reranker.weight, reranker.pool, reranker.max_names) == (0.3, 5, 2)
    assert EmbeddingReranker.load(out, pool=7).pool == 7


def test_tuning_picks_a_weight_that_fixes_the_devel_mistake_at_the_lowest_cost(toy_index, monkeypatch):
    from contextlib import nullcontext

    import biotag.linking.evaluate as evaluate
    from biotag.linking.rerank_train import reranked_mentions, tune_reranker

    gold = [
        evaluate.GoldMention("d1", 0, 14, "kidney failure", "disease", frozenset({"MESH:D051437"})),
        evaluate.GoldMention("d1", 20, 31, "nephropathy", "disease", frozenset({"MESH:D007674"})),  # exact: never re-ranked
    ]
    assert reranked_mentions(Linker(toy_index), gold, {}, 5) == gold[:1]
    monkeypatch.setattr(evaluate, "get_benchmark", lambda name: evaluate.Benchmark(name, "none", ("disease",), ("toy",)))
    monkeypatch.setattr(evaluate, "load_benchmark", lambda bench, split, linker: (gold, {}))
    monkeypatch.setattr(evaluate, "with_training_synonyms", lambda linker, bench, split: nullcontext(linker))
    result = tune_reranker(EmbeddingReranker(WordVectors()), ["toy"], index_dir=toy_index, weights=(0.0, 0.7), pools=(2, 5), names=(2, 8))
    assert result["acc@1 without re-ranking"] == {"toy": 50.0}
    assert result["acc@1"] == {"toy": 100.0} and result["weight"] == 0.7
    # the right concept is the string matcher's fourth: out of reach of a pool of 2; its
    # matched name is the one that helps, so 2 names per candidate suffice
    assert (result["pool"], result["names"]) == (5, 2)
    assert {g["pool"] for g in result["grid"] if g["acc@1"]["toy"] == 100.0} == {5}
    assert len(result["grid"]) == 8


def test_evaluation_measures_speed_with_a_cold_reranker_and_without_it(toy_index, monkeypatch):
    import biotag.linking.evaluate as evaluate
    from biotag.document import Document

    doc = Document("d1", "Kidney failure.")
    doc.add_entity(0, 14, "disease")
    gold = [evaluate.GoldMention("d1", 0, 14, "Kidney failure", "disease", frozenset({"MESH:D051437"}))]
    monkeypatch.setattr(evaluate, "load_benchmark", lambda bench, split, linker: (gold, {"d1": doc}))
    bench = evaluate.Benchmark("toy", "none", ("disease",), ("toy",))
    encoder = WordVectors()
    reranker = EmbeddingReranker(encoder, weight=0.7, pool=5, names=2)
    report = evaluate.evaluate_linking(bench, index_dir=toy_index, reranker=reranker).to_dict()
    assert report["acc@1"] == 100.0
    assert report["mentions/s link_documents"] and report["mentions/s link_documents, no re-ranker"]
    assert report["reranker"] == "EmbeddingReranker (weight 0.7, pool 5, names 2)"
    assert encoder.calls == 2  # scoring, then the speed run after the cache was emptied
    plain = evaluate.evaluate_linking(bench, index_dir=toy_index).to_dict()
    assert plain["acc@1"] == 0.0 and plain["mentions/s link_documents, no re-ranker"] is None and plain["reranker"] is None


def test_train_reranker_command_stops_when_time_is_up_and_the_same_command_finishes(tiny_encoder, tmp_path):
    from typer.testing import CliRunner

    from biotag.cli import app

    build_index("toy", CONCEPTS, tmp_path / "indexes")
    out = tmp_path / "reranker"
    command = ["train-reranker", "-o", str(out), "--encoder", str(tiny_encoder), "--indexes", str(tmp_path / "indexes"),
               "--ontology", "toy", "--no-mentions", "--steps", "3", "--batch-size", "2", "--no-tune"]
    stopped = CliRunner().invoke(app, [*command, "--max-minutes", "0"])
    assert stopped.exit_code == 3 and "run the same command again" in stopped.output
    assert (out / "checkpoint").is_dir() and not (out / CONFIG_FILE).exists()
    finished = CliRunner().invoke(app, command)
    assert finished.exit_code == 0, finished.output
    assert read_config(out)["types"] == ["disease"] and read_config(out)["training"]["steps"] == 3
