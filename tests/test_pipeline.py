"""Pipeline of steps: per-document error capture, set-aside, streaming, timing, registry
and configs, the default pipeline, the NER step and the CLI's --steps/--pipeline."""

import json
import logging
import sys
import types
from itertools import count, islice

import numpy as np
import pytest
from typer.testing import CliRunner

import biotag
from biotag.cli import app
from biotag.document import Document
from biotag.errors import FormatError, InputError
from biotag.labels import LabelSchema
from biotag.ner import NerTagger
from biotag.pipeline import NerStep, Pipeline, Step, StepError, build_step, default_steps, known_steps, register_step
from biotag.pipeline import registry

runner = CliRunner()


def docs(*ids: str) -> list[Document]:
    return [Document(id=i, text=f"Document {i} text.") for i in ids]


def tagging_step(name: str = "tag", *, fail_on: str | None = None, calls: list | None = None) -> Step:
    """A batch step that adds one entity per document, and raises on document ``fail_on``
    after having tagged the documents before it (so a roll-back is needed)."""

    def tag(batch: list[Document]) -> list[Document]:
        if calls is not None:
            calls.append([d.id for d in batch])
        for doc in batch:
            if doc.id == fail_on:
                raise ValueError(f"cannot tag {doc.id}")
            doc.add_entity(0, 8, "Thing", source=name)
        return batch

    return Step(name, tag)


# -- per-document error capture ------------------------------------------------------
def test_a_failing_document_carries_the_error_and_the_others_complete():
    calls = []
    step = tagging_step(fail_on="b", calls=calls)
    out = step(docs("a", "b", "c"))
    assert [d.id for d in out] == ["a", "b", "c"]
    # the batch failed once, then each document ran alone
    assert calls == [["a", "b", "c"], ["a"], ["b"], ["c"]]
    # the batch's partial work on "a" was rolled back: exactly one entity, not two
    assert [len(d.entities) for d in out] == [1, 0, 1]
    assert out[1].errors == [{"step": "tag", "type": "ValueError", "message": "cannot tag b"}]
    assert out[0].errors == out[2].errors == []


def test_later_steps_skip_failed_documents_unless_told_otherwise():
    seen, seen_anyway = [], []
    pipeline = Pipeline(
        [
            tagging_step("first", fail_on="b"),
            Step("second", lambda batch: seen.extend(d.id for d in batch)),
            Step("cleanup", lambda batch: seen_anyway.extend(d.id for d in batch), run_failed=True),
        ]
    )
    out = pipeline(docs("a", "b", "c"))
    assert [d.id for d in out] == ["a", "b", "c"]  # the failed document is passed on
    assert seen == ["a", "c"] and seen_anyway == ["a", "b", "c"]
    assert out[1].errors[0]["step"] == "first"
    assert pipeline.stats()["first"]["failed"] == 1 and pipeline.stats()["second"]["documents"] == 2


def test_set_aside_mode_returns_failed_documents_separately():
    seen = []
    pipeline = Pipeline(
        [tagging_step(fail_on="b"), Step("after", lambda batch: seen.extend(d.id for d in batch), run_failed=True)],
        on_error="set_aside",
        batch_size=2,
    )
    result = pipeline.run(docs("a", "b", "c"))
    assert [d.id for d in result.documents] == ["a", "c"]
    assert [d.id for d in result.set_aside] == ["b"] and result.set_aside[0].errors[0]["message"] == "cannot tag b"
    assert seen == ["a", "c"]  # a set-aside document leaves the stream at once
    streamed = list(pipeline.pipe(docs("b", "d")))
    assert [d.id for d in streamed] == ["d"] and [d.id for d in pipeline.set_aside] == ["b"]


def test_a_step_must_return_one_document_per_input():
    with pytest.raises(StepError, match="returned 1 documents for 2"):
        Step("drop", lambda batch: batch[:1])(docs("a", "b"))


def test_pipe_streams_batch_by_batch():
    pulled = []

    def endless():
        for i in count():
            pulled.append(i)
            yield Document(id=str(i), text="x")

    pipeline = Pipeline([Step("noop", lambda batch: None)], batch_size=4)
    first = list(islice(pipeline.pipe(endless()), 5))
    assert [d.id for d in first] == ["0", "1", "2", "3", "4"]
    assert len(pulled) == 8  # two batches read, nothing more


def test_stats_report_time_documents_and_memory_and_are_logged(caplog):
    def allocate(batch):
        batch[0].metadata["blob"] = np.ones(4 * 2**20)  # 32 MiB kept on the document
        return batch

    pipeline = Pipeline([Step("alloc", allocate), build_step("sentences")], batch_size=2)
    with caplog.at_level(logging.INFO, logger="biotag.pipeline"):
        out = pipeline(docs("a", "b", "c"))
    stats = pipeline.stats()
    assert list(stats) == ["alloc", "sentences"]
    assert stats["sentences"]["documents"] == 3 and stats["sentences"]["batches"] == 2
    assert stats["sentences"]["seconds"] > 0 and stats["sentences"]["docs_per_second"] > 0
    assert stats["alloc"]["peak_rss_delta_mb"] >= 30
    assert all(d.sentences for d in out)
    assert "step sentences" in caplog.text and "docs/s" in caplog.text
    pipeline.reset_stats()
    assert pipeline.stats()["alloc"]["documents"] == 0


def test_duplicate_step_names_and_bad_settings_are_input_errors():
    with pytest.raises(InputError, match="repeated: sentences"):
        Pipeline([build_step("sentences"), build_step("sentences")])
    with pytest.raises(InputError, match="unknown policy 'drop'"):
        Pipeline([build_step("sentences")], on_error="drop")


# -- registry and configs ----------------------------------------------------------------
def test_config_round_trip_through_a_json_file(tmp_path):
    config = {
        "batch_size": 16,
        "on_error": "set_aside",
        "steps": [{"name": "sentences", "max_chars": 500}, {"name": "abbreviations", "min_overlap": 0.5, "run_failed": True}],
    }
    pipeline = Pipeline.from_config(config)
    assert pipeline.names == ["sentences", "abbreviations"] and pipeline.batch_size == 16
    assert pipeline.step("abbreviations").run_failed is True
    assert pipeline.to_config() == config
    path = pipeline.save_config(tmp_path / "pipeline.json")
    again = Pipeline.from_config(path)
    assert again.to_config() == config
    doc = again([Document("1", "Levels of tumor necrosis factor (TNF) rose.")])[0]
    assert doc.metadata["abbreviations"] == [{"short": [33, 36], "long": [10, 31]}]


def test_unknown_step_is_a_clear_error_listing_known_steps(tmp_path):
    with pytest.raises(InputError) as caught:
        Pipeline.from_config({"steps": [{"name": "sentences"}, {"name": "parse"}]})
    message = str(caught.value)
    assert "unknown step 'parse'" in message and "steps[1].name" in message
    for name in ("abbreviations", "linking", "ner", "sentences"):
        assert name in message
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"steps": ["parse"]}))
    with pytest.raises(InputError, match=r"bad\.json: field 'steps\[0\]\.name': unknown step"):
        Pipeline.from_config(path)


def test_config_mistakes_name_their_place(tmp_path):
    with pytest.raises(InputError, match="step 'sentences' has no option 'max_words'; its options: max_chars, run_failed"):
        Pipeline.from_config({"steps": [{"name": "sentences", "max_words": 3}]})
    with pytest.raises(InputError, match="unknown key.*'step'"):
        Pipeline.from_config({"step": ["sentences"]})
    with pytest.raises(InputError, match="field 'steps': must be a non-empty list"):
        Pipeline.from_config({"steps": []})
    bad = tmp_path / "broken.json"
    bad.write_text('{"steps": [\n  "sentences",\n]}')
    with pytest.raises(FormatError, match=r"broken\.json:3: invalid JSON"):
        Pipeline.from_config(bad)
    with pytest.raises(InputError, match="built from code"):
        Pipeline([Step("mine", lambda batch: None)]).to_config()


def test_registered_factories_are_usable_from_configs(monkeypatch):
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))

    @register_step("shout")
    def shout(*, suffix: str = "!"):
        def process(batch):
            for doc in batch:
                doc.metadata["shout"] = doc.text.upper() + suffix
        return process

    pipeline = Pipeline.from_config({"steps": [{"name": "shout", "suffix": "?!"}]})
    assert pipeline([Document("1", "hi")])[0].metadata["shout"] == "HI?!"
    assert "shout" in known_steps() and pipeline.to_config()["steps"] == [{"name": "shout", "suffix": "?!"}]


# -- NER step and the default pipeline -------------------------------------------------------
class CapitalisedThings:
    """A stand-in model: runs of capitalised words are Things; "EXPLODE" crashes it."""

    schema = LabelSchema(("Thing",), "bio")
    O, B, I = [0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]

    def predict_words(self, word_lists, *, batch_size=32):
        out = []
        for words in word_lists:
            if "EXPLODE" in words:
                raise RuntimeError("model crashed")
            capital = [w[:1].isupper() for w in words]
            rows = [(self.I if i and capital[i - 1] else self.B) if c else self.O for i, c in enumerate(capital)]
            out.append(np.log(np.array(rows)))
        return out


def test_ner_step_isolates_the_document_that_crashes_the_model():
    step = NerStep(NerTagger(CapitalisedThings()))
    good, bad, other = Document("1", "the Insulin here."), Document("2", "EXPLODE now."), Document("3", "a Kinase.")
    out = Pipeline([build_step("sentences"), step, build_step("abbreviations")])([good, bad, other])
    assert [[e.text for e in d.entities] for d in out] == [["Insulin"], [], ["Kinase"]]
    assert out[1].errors == [{"step": "ner", "type": "RuntimeError", "message": "model crashed"}]
    assert "abbreviations" not in out[1].metadata and "abbreviations" in out[0].metadata


def test_ner_step_from_a_config_reports_a_missing_model(tmp_path):
    with pytest.raises(InputError, match="not a biotag model directory"):
        Pipeline.from_config({"steps": [{"name": "ner", "model": str(tmp_path)}]})


def fake_ner(**options):
    return NerStep(NerTagger(CapitalisedThings()))


def test_default_pipeline_leaves_linking_out_when_unavailable(monkeypatch, caplog):
    monkeypatch.setitem(registry._FACTORIES, "ner", fake_ner)
    monkeypatch.setitem(sys.modules, "biotag.linking", None)  # "not installed"
    with caplog.at_level(logging.INFO, logger="biotag.pipeline"):
        steps = default_steps()
    assert [s.name for s in steps] == ["sentences", "ner", "abbreviations"]
    assert "without a linking step" in caplog.text and "entity linking is not installed" in caplog.text


def test_default_pipeline_links_when_linking_is_available(monkeypatch):
    class Linker:
        """Links names of several words; a bare short form is NIL for it."""

        def link_documents(self, batch):
            for doc in batch:
                for entity in doc.entities:
                    if " " in entity.text:
                        entity.links = [biotag.Link("TEST", entity.text.lower())]
            return batch

    monkeypatch.setitem(registry._FACTORIES, "ner", fake_ner)
    monkeypatch.setitem(sys.modules, "biotag.linking", types.SimpleNamespace(Linker=Linker))
    steps = default_steps()
    assert [s.name for s in steps] == ["sentences", "ner", "linking", "abbreviations"]
    doc = Pipeline(steps)([Document("1", "levels of Tumour Necrosis Factor (TNF) rose and TNF fell.")])[0]
    # linking ran before abbreviations, so the short forms inherit the long form's link
    tnf = [e for e in doc.entities if e.text == "TNF"]
    assert len(tnf) == 2 and all(e.source == "ner" and e.links[0].id == "tumour necrosis factor" for e in tnf)


# -- API and CLI ------------------------------------------------------------------------------
def test_load_with_chosen_steps_needs_no_model():
    nlp = biotag.load(steps="sentences, abbreviations")
    doc = nlp("Levels of TNF (tumor necrosis factor) rose.")
    assert doc.metadata["abbreviations"] == [{"short": [10, 13], "long": [15, 36]}] and doc.sentences
    assert [d.id for d in nlp(docs("a", "b"))] == ["a", "b"] and [d.id for d in nlp.pipe(iter(docs("c")))] == ["c"]
    assert nlp.types == () and nlp.stats()["abbreviations"]["documents"] == 4
    with pytest.raises(InputError, match="not both"):
        biotag.load(steps="sentences", config={"steps": ["sentences"]})


def test_annotate_cli_steps_and_pipeline_options(tmp_path):
    text = "Levels of tumor necrosis factor (TNF) rose."
    result = runner.invoke(app, ["annotate", text, "--steps", "sentences,abbreviations"])
    assert result.exit_code == 0, result.output
    doc = Document.from_dict(json.loads(result.stdout.strip()))
    assert doc.metadata["abbreviations"] == [{"short": [33, 36], "long": [10, 31]}]
    config = tmp_path / "p.json"
    config.write_text(json.dumps({"steps": ["abbreviations"]}))
    result = runner.invoke(app, ["annotate", text, "--pipeline", str(config)])
    assert result.exit_code == 0 and Document.from_dict(json.loads(result.stdout.strip())).sentences is None
    failed = runner.invoke(app, ["annotate", text, "--steps", "sentences,bogus"])
    assert failed.exit_code == 2 and "unknown step 'bogus'; known steps: abbreviations, linking, ner" in failed.output
