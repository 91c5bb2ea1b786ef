"""End to end through the command line and the Python API with a tiny trained model."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import biotag
from biotag import io
from biotag.cli import app
from biotag.document import Document

runner = CliRunner()


@pytest.fixture(scope="module")
def toy_model(toy_trained) -> tuple[Path, Path]:
    return toy_trained


def test_annotate_text_with_the_python_api(toy_model):
    model_dir, _ = toy_model
    nlp = biotag.load(model_dir)
    doc = nlp("the Insulin of Kinase was the cell .")
    assert [(e.text, e.type) for e in doc.entities] == [("Insulin", "Thing")]
    assert doc.entities[0].source == "ner" and 0 < doc.entities[0].score <= 1
    doc.validate()


def test_annotate_cli_writes_valid_jsonl(toy_model, tmp_path):
    model_dir, _ = toy_model
    result = runner.invoke(app, ["annotate", "the Aspirin and the Kinase .", "--model", str(model_dir)])
    assert result.exit_code == 0, result.output
    doc = Document.from_dict(json.loads(result.stdout.strip().splitlines()[0]))
    assert [e.text for e in doc.entities] == ["Aspirin", "Kinase"]


def test_annotate_cli_files_formats_and_skip_bad(toy_model, tmp_path):
    model_dir, _ = toy_model
    good = Document.from_passages("1", [("title", "the Insulin ."), ("abstract", "the Kinase of blood .")])
    src = tmp_path / "in.pubtator"
    io.write([good], src, "pubtator")
    with open(src, "a") as fh:  # a second, broken document after the good one
        fh.write("2|t|the Beta .\n2|a|x\n2\t0\t99\tthe\tThing\t-1\n\n")
    out = tmp_path / "out.bioc.xml"
    args = ["annotate", "-i", str(src), "-o", str(out), "-f", "bioc-xml", "--model", str(model_dir)]
    failed = runner.invoke(app, args)
    assert failed.exit_code == 2 and "document 2" in failed.output and "'end'" in failed.output
    result = runner.invoke(app, args + ["--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "1 documents annotated, 1 skipped" in result.output
    (doc,) = list(io.read(out, "bioc-xml"))
    assert sorted(e.text for e in doc.entities) == ["Insulin", "Kinase"]


def test_evaluate_cli_matches_seqeval_on_the_same_predictions(toy_model, tmp_path):
    from seqeval.metrics import classification_report

    from biotag.evaluation import strip_entities
    from biotag.labels import tags_from_spans
    from biotag.text.words import char_spans_to_word_spans

    model_dir, corpus = toy_model
    report_path = tmp_path / "report.json"
    result = runner.invoke(app, ["evaluate", "--model", str(model_dir), "--corpus", str(corpus), "--split", "devel", "-o", str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())

    gold_docs = list(io.read(corpus / "devel.jsonl"))
    pred_docs = biotag.load(model_dir)([strip_entities(d) for d in gold_docs])
    gold_tags, pred_tags = [], []
    for gold, pred in zip(gold_docs, pred_docs):
        tokens = [(t.start, t.end) for t in gold.tokens]
        for tags, doc in ((gold_tags, gold), (pred_tags, pred)):
            spans = char_spans_to_word_spans(tokens, [(e.start, e.end) for e in doc.entities])
            from biotag.labels import TokenSpan

            tags.append(tags_from_spans(len(tokens), [TokenSpan(int(a), int(b), e.type) for (a, b), e in zip(spans, doc.entities)]))
    reference = classification_report(gold_tags, pred_tags, output_dict=True)
    assert report["micro"]["f1"] == pytest.approx(reference["micro avg"]["f1-score"], abs=1e-9)
    assert report["micro"]["precision"] == pytest.approx(reference["micro avg"]["precision"], abs=1e-9)
    assert report["micro"]["f1"] > 0.8


def test_convert_cli_round_trip(tmp_path):
    doc = Document.from_passages("7", [("title", "Aspirin and cancer."), ("abstract", "It helps.")])
    doc.add_entity(0, 7, "Chemical")
    src = tmp_path / "a.jsonl"
    io.write([doc], src)
    assert runner.invoke(app, ["convert", str(src), str(tmp_path / "b.bioc.json")]).exit_code == 0
    assert runner.invoke(app, ["convert", str(tmp_path / "b.bioc.json"), str(tmp_path / "c.jsonl")]).exit_code == 0
    (back,) = list(io.read(tmp_path / "c.jsonl"))
    assert back.text == doc.text and [(e.spans, e.type) for e in back.entities] == [(doc.entities[0].spans, "Chemical")]


def test_missing_model_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["annotate", "text", "--model", str(tmp_path)])
    assert result.exit_code == 2 and "not a biotag model directory" in result.output


def test_train_cli_keeps_the_config_encoder_and_device_unless_overridden(tmp_path, monkeypatch):
    """A config file's encoder must not be replaced by the option's default (an MPNet
    config once trained MiniLM-L6); options given on the command line do override it."""
    import biotag.training

    seen = []
    monkeypatch.setattr(biotag.training, "train", lambda cfg, resume=False: seen.append(cfg) or tmp_path)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"corpora": ["ncbi-disease"], "output_dir": str(tmp_path / "out"), "encoder": "mpnet-base", "device": "auto"}))
    args = ["train", "--config", str(config), "-c", "ncbi-disease", "-o", str(tmp_path / "out")]
    assert runner.invoke(app, args).exit_code == 0
    assert (seen[-1].encoder, seen[-1].device) == ("mpnet-base", "auto")
    assert runner.invoke(app, args + ["--encoder", "minilm-l3", "--device", "cpu"]).exit_code == 0
    assert (seen[-1].encoder, seen[-1].device) == ("minilm-l3", "cpu")
    result = runner.invoke(app, args + ["--device", "gpu"])
    assert result.exit_code != 0 and "device" in result.output


def test_train_takes_corpora_and_output_from_the_config(tmp_path, monkeypatch):
    """`biotag train --config FILE` alone is the documented command (README, configs/)."""
    import biotag.training

    seen = []
    monkeypatch.setattr(biotag.training, "train", lambda cfg, resume=False: seen.append(cfg) or tmp_path)
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"corpora": ["ncbi-disease", "bc5cdr"], "output_dir": str(tmp_path / "out")}))
    assert runner.invoke(app, ["train", "--config", str(config)]).exit_code == 0
    assert (seen[-1].corpora, seen[-1].output_dir) == (["ncbi-disease", "bc5cdr"], str(tmp_path / "out"))
    assert runner.invoke(app, ["train", "--config", str(config), "-c", "s800", "-o", str(tmp_path / "other")]).exit_code == 0
    assert (seen[-1].corpora, seen[-1].output_dir) == (["s800"], str(tmp_path / "other"))
    result = runner.invoke(app, ["train", "-c", "s800"])
    assert result.exit_code == 2 and "--output" in result.output and len(seen) == 2


def test_train_feature_options_override_the_default_recipe(tmp_path, monkeypatch):
    """Dictionary and shape features are on unless turned off; --dictionaries swaps in a
    saved dictionary folder and cannot go with --no-dictionary-features."""
    import biotag.training

    seen = []
    monkeypatch.setattr(biotag.training, "train", lambda cfg, resume=False: seen.append(cfg) or tmp_path)
    base = ["train", "-c", "ncbi-disease", "-o", str(tmp_path / "out")]
    assert runner.invoke(app, base).exit_code == 0
    assert (seen[-1].dictionary_features, seen[-1].shape_features) == (True, True)
    assert runner.invoke(app, base + ["--no-dictionary-features", "--no-shape-features", "--feature-dropout", "0.3"]).exit_code == 0
    assert (seen[-1].dictionary_features, seen[-1].shape_features, seen[-1].feature_dropout) == (False, False, 0.3)
    assert runner.invoke(app, base + ["--dictionaries", str(tmp_path / "dict")]).exit_code == 0
    assert seen[-1].dictionary_features == str(tmp_path / "dict")
    config = tmp_path / "plain.json"  # a config's explicit choice holds unless an option overrides it
    config.write_text(json.dumps({"corpora": ["s800"], "output_dir": str(tmp_path / "p"), "dictionary_features": False}))
    assert runner.invoke(app, ["train", "--config", str(config)]).exit_code == 0
    assert (seen[-1].dictionary_features, seen[-1].shape_features) == (False, True)
    result = runner.invoke(app, base + ["--dictionaries", str(tmp_path / "dict"), "--no-dictionary-features"])
    assert result.exit_code != 0 and "dictionaries" in result.output and len(seen) == 4
