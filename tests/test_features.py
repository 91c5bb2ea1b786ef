"""Dictionary and shape features: matcher rules, persistence, alignment to sub-words,
training, saving, ONNX export. Tiny synthetic dictionaries and a tiny random encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import make_tiny_encoder, write_toy_corpus

from biotag.errors import InputError
from biotag.features import SHAPE_FLAGS, DictionaryMatcher, FeatureExtractor, shape_features
from biotag.features.dictionary import B, I, O

TYPES = ("disease", "gene", "chemical")
ENTRIES = [
    ("Breast Cancer", "disease"),
    ("cancer", "disease"),
    ("BRCA1", "gene"),
    ("breast cancer type 1 susceptibility protein", "gene"),
    ("IL-6", "gene"),
    ("TNF-alpha", "gene"),
    ("CAT", "gene"),  # catalase: must not match the animal
    ("WAS", "gene"),  # Wiskott-Aldrich syndrome gene: must not match the verb
    ("impact", "gene"),  # lower-case common word: dropped
    ("Lead", "chemical"),  # a common word written capitalised: dropped
    ("rat", "gene"),  # short but lower case and not common: any case
    ("X", "gene"),  # one character: dropped
    ("Alzheimer's disease", "disease"),
    ("aspirin", "chemical"),
    ("aspirin", "disease"),  # the same name in two types
    ("ignored type", "species"),
]


@pytest.fixture(scope="module")
def matcher():
    return DictionaryMatcher.build(ENTRIES, TYPES)


def spans(matcher, text):
    return [(m.start, m.end, m.type) for m in matcher.matches(text.split())]


def test_longest_match_per_type_and_nested_types(matcher):
    words = "Mutations in BRCA1 cause breast cancer type 1 susceptibility protein loss".split()
    found = spans(matcher, " ".join(words))
    # the gene name is the longest gene match; breast cancer stays a disease inside it
    assert (4, 10, "gene") in found and (4, 6, "disease") in found
    assert (2, 3, "gene") in found
    assert (5, 6, "disease") not in found  # "cancer" alone lost to the longer disease match
    assert spans(matcher, "a cancer") == [(1, 2, "disease")]


def test_features_are_bio_columns_per_type(matcher):
    features = matcher.features("breast cancer and BRCA1".split())
    assert features.shape == (4, 3) and features.dtype == np.uint8
    assert features[:, 0].tolist() == [B, I, O, O]
    assert features[:, 1].tolist() == [O, O, O, B]
    assert not features[:, 2].any()


def test_normalised_words_match_punctuation_greek_and_possessive_variants(matcher):
    assert spans(matcher, "IL - 6 levels") == [(0, 3, "gene")]
    assert spans(matcher, "IL6 levels") == [(0, 1, "gene")]
    assert spans(matcher, "TNF - α") == [(0, 3, "gene")]
    assert spans(matcher, "TNFα") == [(0, 1, "gene")]
    assert spans(matcher, "Alzheimer ' s disease") == [(0, 4, "disease")]
    assert spans(matcher, "ASPIRIN") == [(0, 1, "chemical"), (0, 1, "disease")]


def test_matches_align_to_word_boundaries_only(matcher):
    assert spans(matcher, "cancers") == []  # no match inside a word
    assert spans(matcher, "precancer") == []
    assert spans(matcher, "IL - 62") == []  # il62 is not il6
    assert spans(matcher, "XIL - 6") == []
    assert spans(matcher, "") == [] and matcher.features([]).shape == (0, 3)


def test_case_rules_for_short_and_ambiguous_names(matcher):
    assert spans(matcher, "CAT activity") == [(0, 1, "gene")]
    assert spans(matcher, "the cat sat") == [] and spans(matcher, "Cat") == []
    assert spans(matcher, "WAS mutations") == [(0, 1, "gene")]
    assert spans(matcher, "it was found") == []
    assert spans(matcher, "the impact of") == []  # lower-case common word dropped
    assert spans(matcher, "Lead exposure") == [] and spans(matcher, "lead") == []
    assert spans(matcher, "Rat and rat") == [(0, 1, "gene"), (2, 3, "gene")]
    assert spans(matcher, "X") == []
    counts = matcher.info["counts"]
    # one-word symbols (CAT, WAS, IL-6, BRCA1) and TNF-alpha (tnf: short, alpha: common) need their case
    assert counts["case_sensitive"] == 5 and counts["dropped"] == 3
    assert spans(matcher, "brca1") == [] and spans(matcher, "tnf - alpha") == [] and counts["names"] == len(ENTRIES) - 1


def test_saved_matcher_is_not_pickled_and_matches_the_same(matcher, tmp_path):
    folder = matcher.save(tmp_path / "dictionary")
    assert sorted(p.name for p in folder.iterdir()) == ["dictionary.json", "flags.npy", "forms.marisa", "keys.marisa"]
    loaded = DictionaryMatcher.load(folder)
    for text in ("breast cancer and BRCA1", "CAT and cat", "IL - 6 and TNF - α in Alzheimer ' s disease"):
        assert loaded.matches(text.split()) == matcher.matches(text.split())
    assert loaded.info["counts"] == matcher.info["counts"]
    (folder / "flags.npy").write_bytes(b"garbage")
    with pytest.raises(InputError) as error:
        DictionaryMatcher.load(folder)
    assert error.value.field == "dictionary"
    with pytest.raises(InputError):
        DictionaryMatcher.load(tmp_path / "missing")


def test_shape_flags_come_from_the_cased_word():
    words = ["BRCA1", "Aspirin", "mRNA", "p53", "alpha", "TNFα", "-", "IL-2", "(", "II", "2010", "T", "the"]
    table = dict(zip(words, shape_features(words)))
    flag = {name: i for i, name in enumerate(SHAPE_FLAGS)}

    def on(word):
        return {name for name, i in flag.items() if table[word][i]}

    assert on("BRCA1") == {"all_caps", "has_digit", "letters_and_digits", "short"} - {"short"}
    assert on("Aspirin") == {"capitalised"}
    assert on("mRNA") == {"mixed_case"}
    assert on("p53") == {"lower", "has_digit", "letters_and_digits", "short"}
    assert "greek" in on("alpha") and "greek" in on("TNFα") and "all_caps" in on("TNFα")
    assert on("-") == {"hyphen", "punctuation", "short"} and "hyphen" in on("IL-2")
    assert on("II") == {"all_caps", "roman", "short"}
    assert on("2010") == {"has_digit", "all_digits"}
    assert on("T") == {"single_upper", "short"} and on("the") == {"lower", "short"}
    # the same letters in another case have another shape: what an uncased encoder cannot see
    assert not np.array_equal(shape_features(["CAT"]), shape_features(["cat"]))


def test_extractor_layout_and_spec(matcher, tmp_path):
    extractor = FeatureExtractor(matcher, shape=True)
    words = "BRCA1 and breast cancer".split()
    rows = extractor(words)
    assert rows.shape == (4, 3 + len(SHAPE_FLAGS)) and extractor.width == rows.shape[1]
    assert np.array_equal(rows[:, :3], matcher.features(words)) and np.array_equal(rows[:, 3:], shape_features(words))
    spec = extractor.save(tmp_path)
    again = FeatureExtractor.from_spec(tmp_path, spec)
    assert np.array_equal(again(words), rows)
    shape_only = FeatureExtractor(None, shape=True)
    assert shape_only.width == len(SHAPE_FLAGS) and shape_only.dictionary_types == ()
    with pytest.raises(InputError):
        FeatureExtractor(None, shape=False)
    with pytest.raises(InputError) as error:
        FeatureExtractor.from_spec(tmp_path, {"dictionary": None, "shape": ["all_caps", "made_up"]})
    assert error.value.field == "features"


def test_features_reach_each_owned_word_across_windows(matcher, tmp_path):
    """Sentences longer than a window: every word's features are computed on the whole
    sentence and arrive at the window that owns the word."""
    from transformers import AutoTokenizer

    from biotag.models.predict import predict_windows
    from biotag.text.subwords import SubwordEncoder

    tokenizer = AutoTokenizer.from_pretrained(make_tiny_encoder(tmp_path / "enc"))
    encoder = SubwordEncoder(tokenizer, max_length=12, stride=3)
    extractor = FeatureExtractor(matcher, shape=True)
    sentences = [("breast cancer and BRCA1 in IL - 6 " * 4).split(), ["CAT"], "the cat was found".split()]
    assert len(encoder.encode(sentences).windows) > len(sentences)  # the first one is cut into windows

    def echo(batch):  # scores = the features the batch carries
        assert batch.word_features.shape[0] == len(batch.word_rows)
        return batch.word_features.astype(np.float32)

    out = predict_windows(encoder, echo, sentences, extractor.width, batch_size=2, features=extractor)
    for words, rows in zip(sentences, out):
        assert np.array_equal(rows, extractor(words).astype(np.float32))


def test_training_config_validates_feature_options(tmp_path):
    from biotag.training import TrainConfig

    for field, value in (("feature_dropout", 1.0), ("decoder", "beam"), ("shape_features", "yes"), ("dictionary_features", 3)):
        with pytest.raises(InputError) as error:
            TrainConfig(corpora=["x"], output_dir=str(tmp_path), **{field: value})
        assert error.value.field == field


def test_the_default_training_recipe_is_dictionary_shape_and_crf(tmp_path):
    """The recipe that won the ablation (issue 9) is what `biotag train` does unless told
    otherwise; a distillation student keeps features opt-in (they cost speed)."""
    from biotag.distill.config import DistillConfig
    from biotag.training import TrainConfig

    config = TrainConfig(corpora=["x"], output_dir=str(tmp_path))
    assert (config.dictionary_features, config.shape_features, config.decoder) == (True, True, "crf")
    student = DistillConfig(corpora=["x"], output_dir=str(tmp_path), teacher="t", encoder="e")
    assert (student.dictionary_features, student.shape_features) == (False, False)


def test_missing_default_dictionaries_are_one_clear_error(tmp_path, monkeypatch):
    """Training with the default recipe where the shared dictionaries are absent stops
    before any training, naming the setting and how to turn it off."""
    from biotag.training import TrainConfig, train

    monkeypatch.setenv("BIOTAG_DATA", str(tmp_path / "no-data"))
    corpus = write_toy_corpus(tmp_path / "toy", n_train=4, n_devel=2)
    config = TrainConfig(corpora=[str(corpus)], output_dir=str(tmp_path / "run"), encoder=str(make_tiny_encoder(tmp_path / "enc")),
                         unify_types=False, max_length=32, threads=1, max_steps=1)
    with pytest.raises(InputError, match="--no-dictionary-features") as error:
        train(config)
    assert error.value.field == "dictionary_features" and "no-data" in str(error.value)
    assert not (tmp_path / "run" / "model").exists()


@pytest.fixture(scope="module")
def feature_model(tmp_path_factory, matcher):
    """A tiny model trained with dictionary + shape features (dictionary of the toy
    corpus's entity words)."""
    from biotag.training import TrainConfig, train

    root = tmp_path_factory.mktemp("feature-model")
    encoder = make_tiny_encoder(root / "encoder")
    corpus = write_toy_corpus(root / "toy", n_train=60, n_devel=10)
    toy = DictionaryMatcher.build([("Aspirin", "Thing"), ("Insulin", "Thing"), ("BRCA", "Thing"), ("blood", "Other")], ("Thing", "Other"))
    toy.save(root / "dictionary")
    config = TrainConfig(
        corpora=[str(corpus)], output_dir=str(root / "run"), encoder=str(encoder), unify_types=False, epochs=3, lr=3e-3,
        batch_size=8, max_length=32, threads=1, patience=0, checkpoint_every=0,
        dictionary_features=str(root / "dictionary"), shape_features=True, feature_dropout=0.2,
    )
    return train(config), corpus


def test_a_feature_model_saves_loads_and_predicts_the_same(feature_model):
    from biotag.models.token_classifier import TokenClassifier

    model_dir, _ = feature_model
    meta = json.loads((model_dir / "biotag.json").read_text())
    assert meta["features"]["dictionary"]["types"] == ["Thing", "Other"] and meta["features"]["shape"] == list(SHAPE_FLAGS)
    assert meta["features"]["dropout"] == 0.2 and meta["decoder"] == "crf"  # TrainConfig's default decoder
    assert (model_dir / "features" / "dictionary" / "keys.marisa").is_file() and (model_dir / "biotag_heads.safetensors").is_file()
    model = TokenClassifier.from_pretrained(model_dir)
    words = [["the", "Aspirin", "dose", "in", "blood", "."], ["Insulin", "and", "the", "BRCA", "gene"]]
    first = model.predict_words(words)
    again = TokenClassifier.from_pretrained(model_dir).predict_words(words)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    # the features change the scores: the same words with the dictionary emptied score differently
    model.features.matcher = DictionaryMatcher.build([], ("Thing", "Other"))
    assert not all(np.allclose(a, b) for a, b in zip(first, model.predict_words(words)))
    # the fusion layer learned something: its output projection left zero
    assert float(model.fusion.project.weight.detach().abs().sum()) > 0


def test_a_feature_model_exports_to_onnx_and_runs_the_same(feature_model, tmp_path):
    from biotag.models.token_classifier import TokenClassifier
    from biotag.runtime.engine import OnnxTokenClassifier
    from biotag.runtime.export import export_onnx

    model_dir, _ = feature_model
    out = export_onnx(model_dir, tmp_path / "onnx", quantize="none", optimize=False)
    engine = OnnxTokenClassifier.from_pretrained(out, threads=1)
    assert engine.features is not None and (out / "features" / "dictionary" / "dictionary.json").is_file()
    words = [["the", "Aspirin", "dose", "in", "blood", "."], ["Insulin", "and", "the", "BRCA", "gene"] * 5]
    torch_scores = TokenClassifier.from_pretrained(model_dir).predict_words(words)
    onnx_scores = engine.predict_words(words)
    for a, b in zip(torch_scores, onnx_scores):
        assert np.abs(a - b).max() < 1e-3
    with pytest.raises(InputError) as error:
        export_onnx(model_dir, tmp_path / "static", quantize="static", calibration_words=words)
    assert error.value.field == "quantize"


def test_models_without_features_keep_their_files(tmp_path):
    from biotag.labels import LabelSchema
    from biotag.models.token_classifier import TokenClassifier

    model = TokenClassifier.from_encoder(make_tiny_encoder(tmp_path / "enc"), LabelSchema(("disease",)), max_length=32)
    model.save_pretrained(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "biotag.json").read_text())
    assert set(meta) == {"format", "schema", "max_length", "stride", "encoder", "training"}
    assert not (tmp_path / "m" / "biotag_heads.safetensors").exists() and not (tmp_path / "m" / "features").exists()


def test_default_dictionaries_read_with_the_linking_parsers(shared_data, tmp_path):
    """The cell-type source (small) through the same entry reader the default matcher uses."""
    from biotag.features.sources import entries

    names = list(entries({"cell_type": ("cl",)}, root=shared_data / "dictionaries"))
    matcher = DictionaryMatcher.build(names, ("cell_type",))
    assert (1, 3, "cell_type") in [(m.start, m.end, m.type) for m in matcher.matches("activated T cell responses".split())]
    assert matcher.info["counts"]["keys"] > 1000


def test_the_dictionary_cache_follows_file_content_not_modification_time(tmp_path):
    """A re-mounted or copied data folder (new mtimes, same bytes) keeps the cached
    matcher; changed bytes build a new one."""
    import os
    import shutil

    from biotag.features.sources import DEFAULT_SOURCES, _fingerprint
    from biotag.linking.sources import get_source

    root = tmp_path / "dictionaries"
    for names in DEFAULT_SOURCES.values():
        for name in names:
            for relative in get_source(name).files:
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                (root / relative).write_bytes(relative.encode())
    first, _ = _fingerprint(DEFAULT_SOURCES, root)
    copy = shutil.copytree(root, tmp_path / "copy")
    for path in copy.rglob("*"):
        os.utime(path, (1, 1))
    assert _fingerprint(DEFAULT_SOURCES, copy)[0] == first
    some_file = next(p for p in copy.rglob("*") if p.is_file())
    some_file.write_bytes(b"other bytes")
    os.utime(some_file, (1, 1))
    assert _fingerprint(DEFAULT_SOURCES, copy)[0] != first
