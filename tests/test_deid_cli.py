"""biotag deidentify / evaluate-deid / deid-corpora, and the model side of the PHI tagger
with the tiny toy model (it tags a capitalised word after "the")."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from biotag.cli import app
from biotag.deid.tagger import ModelRecogniser, PhiTagger, WordScores, word_probabilities
from biotag.document import Document
from biotag.labels import LabelSchema

runner = CliRunner()


def test_rules_only_text_in_text_out():
    result = runner.invoke(app, ["deidentify", "Admitted 7/22, call 201-561-8910.", "--rules-only"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Admitted [DATE], call [PHONE]."


def test_jsonl_in_jsonl_out_with_offset_map_and_per_patient_dates(tmp_path):
    rows = [
        {"id": "n1", "patient": 4, "text": "Seen 7/22. Pager #12345."},
        {"id": "n2", "patient": 4, "text": "Back on 7/25."},
    ]
    path = tmp_path / "notes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["deidentify", "-i", str(path), "-o", str(out), "--rules-only", "--mode", "surrogate", "--key-field", "patient", "--seed", "9"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == ["n1", "n2"] and {r["key"] for r in records} == {"4"}
    for row, rec in zip(rows, records):
        for phi in rec["phi"]:
            original = row["text"][phi["start"] : phi["end"]]
            assert original not in rec["text"]
            assert "original" not in json.dumps(phi)  # the map holds offsets, not PHI
    d1 = records[0]["text"][records[0]["phi"][0]["output_start"] : records[0]["phi"][0]["output_end"]]
    d2 = records[1]["text"][records[1]["phi"][0]["output_start"] : records[1]["phi"][0]["output_end"]]
    from datetime import date

    (m1, a), (m2, b) = (map(int, d.split("/")) for d in (d1, d2))
    assert (date(2000, m2, b) - date(2000, m1, a)).days == 3  # one offset for the patient
    again = runner.invoke(app, args[:4] + [str(tmp_path / "again.jsonl")] + args[5:])
    assert again.exit_code == 0 and (tmp_path / "again.jsonl").read_text() == out.read_text()  # seeded


def test_folder_of_notes(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("call 201-561-8910\n", encoding="utf-8")
    (notes / "b.txt").write_text("seen 7/22\n", encoding="utf-8")
    result = runner.invoke(app, ["deidentify", "-i", str(notes), "-o", str(tmp_path / "out"), "--rules-only"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a.txt").read_text() == "call [PHONE]\n"
    assert (tmp_path / "out" / "b.txt").read_text() == "seen [DATE]\n"


def test_clear_errors():
    result = runner.invoke(app, ["deidentify", "some text"], env={"BIOTAG_DEID_MODEL": ""})
    assert result.exit_code == 2 and "no PHI model" in result.output
    result = runner.invoke(app, ["deidentify", "x", "--rules-only", "--mode", "blur"])
    assert result.exit_code == 2 and "--mode" in result.output


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"txt": "no text field"}\n', encoding="utf-8")
    result = runner.invoke(app, ["deidentify", "-i", str(path), "--rules-only"])
    assert result.exit_code == 2 and "bad.jsonl:2" in result.output and "'text'" in result.output


def test_word_scores_threshold_and_begins():
    # P(PHI) per word .9 .8 .1 .6 .7; word 4 begins a new span
    ws = WordScores(np.array([0, 4, 8, 12, 16]), np.array([3, 7, 11, 15, 19]), np.array([0.9, 0.8, 0.1, 0.6, 0.7]),
                    np.array([True, False, False, True, True]), ["PHI"] * 5)  # fmt: skip
    assert [(s.start, s.end) for s in ws.spans(0.5)] == [(0, 7), (12, 15), (16, 19)]
    assert [(s.start, s.end) for s in ws.spans(0.75)] == [(0, 7)]
    assert [(s.start, s.end) for s in ws.spans(0.05)] == [(0, 11), (12, 15), (16, 19)]


def test_word_probabilities_both_schemes():
    bio = LabelSchema(("PHI",), "bio")
    phi, begins, best = word_probabilities(bio, np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])))
    assert np.allclose(phi, [0.3, 0.9]) and list(begins) == [True, False]
    multi = LabelSchema(("A", "B"), "multilabel")
    scores = np.log(np.array([[0.9, 0.05, 0.05, 0.2, 0.7, 0.1]]))
    phi, begins, best = word_probabilities(multi, scores)
    assert np.allclose(phi, [0.8]) and list(best) == [1] and list(begins) == [True]


@pytest.fixture(scope="module")
def toy_model(toy_trained):
    return toy_trained[0]


def test_model_tagger_lower_threshold_finds_more(toy_model):
    from biotag.api import load_predictor

    model = ModelRecogniser(load_predictor(toy_model, backend="torch"))
    docs = [Document(id="d", text="the Insulin of Kinase was the cell . the Aspirin and Blood .")]
    scores = model.score(docs)
    strict = PhiTagger(model, None, threshold=0.9).find(docs, scores=scores)[0]
    loose = PhiTagger(model, None, threshold=0.05).find(docs, scores=scores)[0]
    text = docs[0].text
    assert "Insulin" in [text[s.start : s.end] for s in loose]
    assert all(any(l.start <= s.start and s.end <= l.end for l in loose) for s in strict)
    assert len(loose) >= len(strict)


def test_cli_with_a_model_and_its_settings(toy_model, tmp_path):
    text = "the Insulin was seen 7/22 ."
    default = runner.invoke(app, ["deidentify", text, "--model", str(toy_model)])
    assert default.exit_code == 0, default.output
    assert default.stdout.strip() == "the [THING] was seen [DATE] ."  # model: Insulin; rules: the date
    # deid.json of the model: a low threshold (the toy model gives "7" about 0.1) and the
    # phone rules only
    (toy_model / "deid.json").write_text(json.dumps({"threshold": 0.02, "rules": ["PHONE"]}), encoding="utf-8")
    try:
        tuned = runner.invoke(app, ["deidentify", text, "--model", str(toy_model)])
    finally:
        (toy_model / "deid.json").unlink()
    assert tuned.exit_code == 0, tuned.output
    assert "[DATE]" not in tuned.stdout and "Insulin" not in tuned.stdout
    assert tuned.stdout.count("[THING]") > default.stdout.count("[THING]")


def test_evaluate_deid_rules_only(shared_data, tmp_path):
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["evaluate-deid", "--rules-only", "--split", "devel", "-o", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    rules = report["systems"]["rules"]
    assert set(report["systems"]) == {"rules"} and report["notes"] > 300
    assert rules["precision_overlap"] > 0.8 and 0.1 < rules["recall_overlap"] < 0.6  # structured PHI only


def test_deid_corpora_writes_trainer_folders(shared_data, tmp_path):
    result = runner.invoke(app, ["deid-corpora", str(tmp_path)])
    assert result.exit_code == 0, result.output
    from biotag import io

    devel = list(io.read(tmp_path / "physionet-deid" / "devel.jsonl"))
    assert devel and all(e.type == "PHI" for d in devel for e in d.entities)
    assert (tmp_path / "presidio-synthetic" / "devel.jsonl").read_text() == ""
