"""``biotag bench`` end to end on tiny random models (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from biotag.bench import report
from biotag.bench.run import add_ratios, plan
from biotag.bench.worker import add_hf_entities, hf_pipeline, multilabel_to_bio_logits
from biotag.cli import app
from biotag.document import Document
from biotag.errors import InputError
from biotag.labels import LabelSchema
from biotag.models.token_classifier import TokenClassifier
from biotag.runtime.export import export_onnx

from helpers import make_tiny_encoder, write_toy_corpus

runner = CliRunner()
TEXT = "the Insulin of Kinase was the cell . BRCA1 mutations cause breast cancer in the Mouse. "


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    encoder = make_tiny_encoder(root / "encoder")
    teacher = TokenClassifier.from_encoder(encoder, LabelSchema(("Thing", "Gene"), "multilabel"), max_length=24)
    teacher.save_pretrained(root / "teacher" / "model")
    student = TokenClassifier.from_encoder(make_tiny_encoder(root / "enc2", seed=1), LabelSchema(("Thing",), "bio"), max_length=24)
    student.save_pretrained(root / "student-torch")
    export_onnx(root / "student-torch", root / "student", quantize="int8")
    corpus = write_toy_corpus(root / "corpus", n_train=4, n_devel=6)
    texts = root / "texts.jsonl"
    texts.write_text(
        "".join(json.dumps({"pmid": str(i), "title": "The BRCA gene.", "abstract": TEXT * (i + 1)}) + "\n" for i in range(6)),
        encoding="utf-8",
    )
    return {"root": root, "teacher": root / "teacher" / "model", "student": root / "student", "corpus": corpus, "texts": texts}


def test_bench_end_to_end(setup, tmp_path):
    out, doc_file = tmp_path / "out", tmp_path / "docs" / "benchmarks.md"
    doc_file.parent.mkdir()
    doc_file.write_text("# Benchmarks\n\n## Load test\n\nkept text\n", encoding="utf-8")
    args = [
        "bench", "-m", str(setup["teacher"]), "-m", str(setup["student"]), "--data", str(setup["texts"]), "-o", str(out),
        "--limit", "4", "--latency-docs", "2", "--threads", "1", "--export", "fp32,int8,static",
        "--calibration", str(setup["corpus"] / "train.jsonl"), "--eval-corpus", str(setup["corpus"] / "devel.jsonl"),
        "--update-docs", str(doc_file),
    ]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    names = [r["name"] for r in data["results"]]
    assert names == [
        "teacher · HF pipeline", "teacher · biotag torch fp32", "teacher · ORT fp32", "teacher · ORT int8",
        "teacher · ORT static int8", "student · ORT int8",
    ]  # fmt: skip
    for r in data["results"]:
        assert "error" not in r, r
        assert r["docs"] == 4 and r["tokens"] > 100 and r["tokens_per_s"] > 0 and r["docs_per_s"] > 0
        assert 0 < r["latency_p50_ms"] <= r["latency_p95_ms"] and r["latency_docs"] == 2
        assert r["peak_rss_mb"] > 10 and r["size_mb"] > 0
        assert set(r["f1"]) == {str(setup["corpus"] / "devel.jsonl")} and 0 <= next(iter(r["f1"].values())) <= 100
        assert r["reference"] == "teacher · HF pipeline"
    by_name = {r["name"]: r for r in data["results"]}
    assert by_name["teacher · HF pipeline"]["vs_reference"]["tokens_per_s"] == 1.0
    # int8 weights are smaller than fp32 ones; the ONNX processes do not load PyTorch
    assert by_name["teacher · ORT int8"]["size_mb"] < by_name["teacher · ORT fp32"]["size_mb"]
    assert by_name["teacher · ORT int8"]["peak_rss_mb"] < by_name["teacher · biotag torch fp32"]["peak_rss_mb"]
    markdown = (out / "results.md").read_text()
    assert all(f"| {name} |" in markdown for name in names)
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = doc_file.read_text()
    assert "kept text" in text and "teacher · ORT static int8" in text and "img/ner-speed.png" in text
    assert (doc_file.parent / "img" / "ner-speed.png").is_file()
    assert data["meta"]["command"].startswith("biotag bench -m")


def test_update_docs_replaces_its_own_section(tmp_path):
    doc, plot = tmp_path / "b.md", tmp_path / "p.png"
    plot.write_bytes(b"png")
    doc.write_text("# B\n\nbefore\n", encoding="utf-8")
    report.update_docs(doc, "k", "first run", plot, tmp_path / "img")
    doc.write_text(doc.read_text() + "\nafter\n", encoding="utf-8")
    report.update_docs(doc, "k", "second run", plot, tmp_path / "img")
    report.update_docs(doc, "other", "another section", plot, tmp_path / "img")
    text = doc.read_text()
    assert "first run" not in text and text.count("second run") == 1
    assert text.index("before") < text.index("second run") < text.index("after") < text.index("another section")


def test_a_failing_configuration_is_reported_and_the_others_still_run(setup, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in setup["student"].iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.int8.onnx").write_bytes(b"not an onnx graph")
    result = runner.invoke(
        app,
        ["bench", "-m", str(broken), "-m", str(setup["student"]), "--data", str(setup["texts"]), "-o", str(tmp_path / "out"),
         "--limit", "2", "--latency-docs", "1", "--threads", "1", "--no-hf-pipeline"],
    )  # fmt: skip
    assert result.exit_code == 1
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    failed, ok = data["results"]
    assert "ONNX Runtime cannot load the model" in failed["error"]
    assert "error" not in ok and ok["reference"] == ok["name"]  # without the HF pipeline: the first measured one


def test_full_range_export_kind_is_its_own_configuration(setup, tmp_path):
    kinds = ["int8", "int8-full-range", "int8-fp32-embeddings-full-range"]
    configs = plan([setup["teacher"]], tmp_path / "out", hf_pipeline=False, exports=kinds)
    assert [c.name for c in configs] == [
        "teacher · biotag torch fp32", "teacher · ORT int8", "teacher · ORT int8, 8-bit weights", "teacher · ORT int8, fp32 embeddings, 8-bit weights",
    ]  # fmt: skip
    records = [json.loads((Path(c.model_dir) / "biotag.json").read_text())["onnx"] for c in configs[1:]]
    assert [(r["quantize"], r["weight_bits"]) for r in records] == [("int8", 7), ("int8", 8), ("int8-fp32-embeddings", 8)]
    # an export made by `biotag export --full-range` is labelled the same way
    again = plan([configs[2].model_dir], tmp_path / "out2", hf_pipeline=False)
    assert [c.name for c in again] == ["teacher-int8-full-range · ORT int8, 8-bit weights"]


def test_bad_inputs_are_clear_errors(setup, tmp_path):
    with pytest.raises(InputError, match="no biotag.json"):
        plan([tmp_path], tmp_path / "out")
    with pytest.raises(InputError, match="calibration"):
        plan([setup["teacher"]], tmp_path / "out", exports=["static"])
    with pytest.raises(InputError, match="unknown export"):
        plan([setup["teacher"]], tmp_path / "out", exports=["int4"])
    result = runner.invoke(app, ["bench", "-m", str(setup["student"]), "--data", str(tmp_path / "none.jsonl"), "-o", str(tmp_path / "o")])
    assert result.exit_code != 0 and "none.jsonl" in result.output


def test_multilabel_logits_become_joint_single_label_scores():
    import itertools

    import torch

    torch.manual_seed(0)
    logits = torch.randn(4, 5, 3 * 3)  # 4 x 5 tokens, 3 types
    flat = multilabel_to_bio_logits(logits, 3).softmax(-1)
    assert flat.shape == (4, 5, 1 + 2 * 3)
    p = logits.unflatten(-1, (3, 3)).softmax(-1)  # [..., type, O/B/I]
    # brute force: every labelling with at most one non-O type, renormalised
    outcomes = [(None, None)] + [(t, c) for t in range(3) for c in (1, 2)]
    joint = []
    for t, c in outcomes:
        classes = [c if u == t else 0 for u in range(3)]
        joint.append(torch.stack([p[..., u, k] for u, k in zip(range(3), classes)]).prod(0))
    joint = torch.stack(joint, -1)
    assert torch.allclose(flat, joint / joint.sum(-1, keepdim=True), atol=1e-6)
    assert len(list(itertools.product(range(3), repeat=3))) > len(outcomes)  # overlaps are what it leaves out


def test_hf_pipeline_decodes_a_multilabel_head_per_type(setup):
    """A head sure that every token is O for "Thing" (logit 5) and B for "Gene" (logit 3):
    a softmax over all six outputs picks Thing's O everywhere (no entities); the joint
    per-type reading finds Gene."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(setup["teacher"])
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([5.0, 0.0, 0.0, 0.0, 3.0, 0.0]))  # Thing:O/B/I, Gene:O/B/I
    schema = LabelSchema(("Thing", "Gene"), "multilabel")
    ner = hf_pipeline(model, AutoTokenizer.from_pretrained(setup["teacher"]), schema, stride=4)
    found = ner("BRCA gene")
    assert found and {e["entity_group"] for e in found} == {"Gene"}
    bio = setup["root"] / "student-torch"  # a bio head: the pipeline reads it as it is
    plain = AutoModelForTokenClassification.from_pretrained(bio)
    with torch.no_grad():
        plain.classifier.weight.zero_()
        plain.classifier.bias.copy_(torch.tensor([0.0, 4.0, 0.0]))  # O, B-Thing, I-Thing
    found = hf_pipeline(plain, AutoTokenizer.from_pretrained(bio), LabelSchema(("Thing",), "bio"), stride=4)("BRCA gene")
    assert found and {e["entity_group"] for e in found} == {"Thing"}


def test_hf_entities_become_document_entities():
    doc = Document(id="d", text="BRCA1 and T cells")
    add_hf_entities(doc, [{"start": 0, "end": 6, "entity_group": "gene", "score": 0.9}, {"start": 9, "end": 10, "entity_group": "x", "score": 0.5}])
    assert [(e.text, e.type) for e in doc.entities] == [("BRCA1", "gene")]


def test_ratios_against_the_hf_pipeline():
    rows = [
        {"name": "a", "kind": "biotag", "tokens_per_s": 300.0, "docs_per_s": 3.0, "latency_p50_ms": 5.0, "peak_rss_mb": 100.0, "size_mb": 20.0},
        {"name": "hf", "kind": "hf", "tokens_per_s": 100.0, "docs_per_s": 1.0, "latency_p50_ms": 10.0, "peak_rss_mb": 400.0, "size_mb": 80.0},
        {"name": "x", "kind": "biotag", "error": "boom"},
    ]
    add_ratios(rows)
    assert rows[0]["vs_reference"] == {"tokens_per_s": 3.0, "docs_per_s": 3.0, "latency_p50": 0.5, "peak_rss": 0.25, "size": 0.25}
    assert rows[0]["reference"] == "hf" and "vs_reference" not in rows[2]
