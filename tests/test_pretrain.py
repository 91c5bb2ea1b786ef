"""Domain-adaptive pretraining on a tiny random BERT: whole-word masking, chunking,
vocabulary extension, perplexity, exact resume, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import make_tiny_encoder

from biotag.errors import InputError
from biotag.pretrain import PretrainConfig, pretrain
from biotag.pretrain.data import IGNORE, Batcher, chunk_documents, read_text_file, whole_word_mask
from biotag.pretrain.vocab import extend_vocabulary, frequent_split_words

SENTENCES = [
    "The kinase phosphorylates p53 in human cancer cells .",
    "Aspirin reduced the tumour dose in mouse blood .",
    "Insulin and the BRCA gene protein were measured in patients with disease .",
    "The kinase was inhibited by aspirin in the mouse model .",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    encoder = make_tiny_encoder(root / "encoder")
    corpus = root / "text.jsonl"
    rng = np.random.default_rng(0)
    with open(corpus, "w", encoding="utf-8") as fh:
        for i in range(120):
            text = " ".join(SENTENCES[j] for j in rng.integers(0, len(SENTENCES), 3))
            fh.write(json.dumps({"id": f"d{i}", "text": text, "in_test_split": False}) + "\n")
        fh.write(json.dumps({"id": "secret", "text": "TEST ONLY TEXT", "in_test_split": True}) + "\n")
    return encoder, corpus


def _tokenizer(encoder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(encoder)


def test_whole_word_masking_masks_every_subword_of_a_chosen_word(tiny):
    tokenizer = _tokenizer(tiny[0])
    chunks = chunk_documents(tokenizer, SENTENCES * 3, budget=60)
    batcher = Batcher(tokenizer, len(tokenizer), 0.15)
    for i in range(len(chunks)):
        ids, starts = chunks.get(i)
        for seed in range(5):
            out, labels = whole_word_mask(
                ids, starts, np.random.default_rng(seed), mask_prob=0.15, mask_id=batcher.mask_id, vocab_size=len(tokenizer), special=batcher.special
            )
            chosen = labels != IGNORE
            assert chosen.any()
            word = np.cumsum(starts)  # word number of each sub-word
            for w in np.unique(word[chosen]):  # a word is chosen whole or not at all
                assert chosen[word == w].all()
            assert not np.isin(ids[chosen], batcher.special).any()  # separators are never targets
            assert (labels[chosen] == ids[chosen]).all()
            assert chosen.sum() <= max(1, round(0.15 * len(ids))) + starts.size  # about the budget
            unchanged = out == ids
            assert unchanged[~chosen].all()  # only chosen sub-words are corrupted


def test_masking_rate_and_80_10_10_split(tiny):
    tokenizer = _tokenizer(tiny[0])
    chunks = chunk_documents(tokenizer, SENTENCES * 40, budget=100)
    batcher = Batcher(tokenizer, len(tokenizer), 0.15)
    chosen = masked = kept = total = 0
    for seed in range(30):
        for i in range(len(chunks)):
            ids, starts = chunks.get(i)
            out, labels = whole_word_mask(ids, starts, np.random.default_rng([seed, i]), mask_prob=0.15, mask_id=batcher.mask_id, vocab_size=len(tokenizer), special=batcher.special)
            sel = labels != IGNORE
            chosen, total = chosen + sel.sum(), total + len(ids)
            masked += (out[sel] == batcher.mask_id).sum()
            kept += (out[sel] == ids[sel]).sum()
    assert 0.12 < chosen / total < 0.17
    assert 0.75 < masked / chosen < 0.85
    assert 0.07 < kept / chosen < 0.14  # 10 % kept, plus random tokens that hit the same id


def test_chunks_keep_every_subword_within_budget_and_cut_at_word_starts(tiny):
    tokenizer = _tokenizer(tiny[0])
    long_doc = " ".join(SENTENCES * 5)
    chunks = chunk_documents(tokenizer, [long_doc, SENTENCES[0], SENTENCES[1]], budget=32)
    sep = tokenizer.sep_token_id
    pieces = [chunks.get(i) for i in range(len(chunks))]
    assert all(len(ids) <= 32 for ids, _ in pieces)
    assert all(starts[0] for _, starts in pieces)  # every chunk starts at a word start
    flat = [t for ids, _ in pieces for t in ids.tolist() if t != sep]
    expected = [t for text in (long_doc, SENTENCES[0], SENTENCES[1]) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
    assert flat == expected


def test_text_files_skip_test_split_and_report_bad_lines(tiny, tmp_path):
    docs = list(read_text_file(tiny[1]))
    assert len(docs) == 120 and all("TEST ONLY" not in d.text for d in docs)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": 5}\n', encoding="utf-8")
    with pytest.raises(InputError) as error:
        list(read_text_file(bad))
    assert error.value.line == 2 and error.value.field == "text"
    plain = tmp_path / "plain.txt"
    plain.write_text("one document\n\nanother one\n", encoding="utf-8")
    assert [d.text for d in read_text_file(plain)] == ["one document", "another one"]


def test_vocabulary_extension_adds_whole_words_initialised_from_their_subwords(tiny):
    from transformers import AutoModelForMaskedLM

    tokenizer = _tokenizer(tiny[0])
    model = AutoModelForMaskedLM.from_pretrained(tiny[0])
    words = frequent_split_words(tokenizer, SENTENCES * 30, limit=3, min_count=20)
    assert "kinase" in words and len(words) == 3
    old_pieces = tokenizer("kinase", add_special_tokens=False)["input_ids"]
    old_rows = model.get_input_embeddings().weight[old_pieces].detach().clone()
    n_old = len(tokenizer)
    new = extend_vocabulary(model, tokenizer, words)
    assert len(new) == n_old + 3
    (kinase,) = new("kinase", add_special_tokens=False)["input_ids"]
    assert kinase >= n_old
    assert new.convert_ids_to_tokens(new("kinases", add_special_tokens=False)["input_ids"]) == ["kinase", "##s"]
    assert torch.allclose(model.get_input_embeddings().weight[kinase], old_rows.mean(0))
    assert model.get_output_embeddings().weight.shape[0] == n_old + 3
    # words the vocabulary already has whole are not candidates
    assert "the" not in words and "kinase" not in frequent_split_words(new, SENTENCES * 30, limit=10, min_count=20)


def _config(tiny, out, **changes):
    settings = dict(
        encoder=str(tiny[0]), output_dir=str(out), sources=[], text_files=[str(tiny[1])], max_length=32, batch_size=8,
        max_steps=6, head_warmup_steps=3, lr=1e-3, eval_sequences=16, heldout_fraction=0.1, checkpoint_every=2, threads=1,
    )
    settings.update(changes)
    return PretrainConfig(**settings)


def test_pretrain_lowers_heldout_perplexity_and_gives_a_usable_encoder(tiny, tmp_path):
    from biotag.labels import LabelSchema
    from biotag.models.token_classifier import TokenClassifier

    encoder = pretrain(_config(tiny, tmp_path / "run", max_steps=40, head_warmup_steps=10, lr=3e-3, extend_vocab=2, min_word_count=5))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    ppl = summary["perplexity"]
    assert set(ppl) == {"initial", "before", "after"}
    assert ppl["before"] < ppl["initial"] and ppl["after"] < ppl["before"]
    assert summary["finished"] and not (tmp_path / "run" / "checkpoint").exists()
    card = json.loads((encoder / "pretrain.json").read_text())
    assert card["added_words"] == 2 and card["data"]["heldout_documents"] > 0
    model = TokenClassifier.from_encoder(encoder, LabelSchema(("disease",)), max_length=32)
    assert len(model.tokenizer) == card["data"]["vocab_size"]
    (scores,) = model.predict_words([["The", "kinase", "gene", "."]])
    assert scores.shape == (4, 3)


def test_resume_replays_the_uninterrupted_run(tiny, tmp_path, monkeypatch):
    from biotag.pretrain import trainer as trainer_module

    full = pretrain(_config(tiny, tmp_path / "full"))
    original = trainer_module.Pretrainer._batch

    def crash_at_five(self, number, chunks=None, indices=None):
        if chunks is None and number == 5:
            raise KeyboardInterrupt("killed")
        return original(self, number, chunks, indices)

    monkeypatch.setattr(trainer_module.Pretrainer, "_batch", crash_at_five)
    with pytest.raises(KeyboardInterrupt):
        pretrain(_config(tiny, tmp_path / "cut"))
    assert json.loads((tmp_path / "cut" / "checkpoint" / "state.json").read_text())["step"] == 4
    monkeypatch.setattr(trainer_module.Pretrainer, "_batch", original)
    resumed = pretrain(_config(tiny, tmp_path / "cut"), resume=True)
    from safetensors.torch import load_file

    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "full" / "summary.json").read_text())["perplexity"] == json.loads((tmp_path / "cut" / "summary.json").read_text())["perplexity"]


def test_time_budget_stops_saves_and_resume_finishes(tiny, tmp_path):
    encoder = pretrain(_config(tiny, tmp_path / "run", max_steps=20, max_minutes=1e-6))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == "time" and not summary["finished"] and (encoder / "model.safetensors").is_file()
    assert (tmp_path / "run" / "checkpoint").is_dir()
    with pytest.raises(InputError) as error:  # a changed config cannot continue the checkpoint
        pretrain(_config(tiny, tmp_path / "run", max_steps=20, lr=5e-4), resume=True)
    assert error.value.field == "lr"
    pretrain(_config(tiny, tmp_path / "run", max_steps=20), resume=True)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["finished"] and summary["steps"] == 23


def test_config_errors_name_the_setting(tmp_path):
    with pytest.raises(InputError) as error:
        PretrainConfig(encoder="x", output_dir=str(tmp_path), sources=["wikipedia"])
    assert error.value.field == "sources"
    with pytest.raises(InputError) as error:
        PretrainConfig.from_dict({"encoder": "x", "output_dir": "y", "mask_prob": 1.5})
    assert error.value.field == "mask_prob"
    with pytest.raises(InputError) as error:
        PretrainConfig.from_dict({"encoder": "x", "output_dir": "y", "learning_rate": 1})
    assert error.value.field == "learning_rate"
    with pytest.raises(InputError) as error:  # true is an int to Python, not a batch size
        PretrainConfig.from_dict({"encoder": "x", "output_dir": "y", "batch_size": True})
    assert error.value.field == "batch_size"
    with pytest.raises(InputError) as error:
        PretrainConfig.from_dict({"encoder": "x", "output_dir": "y", "max_minutes": 0})
    assert error.value.field == "max_minutes" and "(0, inf) or null" in str(error.value)
    assert PretrainConfig.from_dict({"encoder": "x", "output_dir": "y", "max_minutes": None}).max_minutes is None


def test_cli_pretrain(tiny, tmp_path):
    from typer.testing import CliRunner

    from biotag.cli import app

    result = CliRunner().invoke(
        app,
        ["pretrain", "--encoder", str(tiny[0]), "--output", str(tmp_path / "run"), "--no-shared", "--text", str(tiny[1]),
         "--max-steps", "2", "--head-warmup-steps", "1", "--max-length", "32", "--batch-size", "4", "--eval-sequences", "8", "--threads", "1"],
    )
    assert result.exit_code == 0, result.output
    assert "held-back perplexity: initial" in result.output and (tmp_path / "run" / "encoder" / "config.json").is_file()
    result = CliRunner().invoke(app, ["pretrain", "--output", str(tmp_path / "x"), "--encoder", str(tmp_path / "missing"), "--no-shared", "--text", str(tiny[1])])
    assert result.exit_code != 0 and "encoder" in result.output


def test_device_auto_pretrains_here_and_a_bad_device_names_the_setting(tiny, tmp_path):
    encoder = pretrain(_config(tiny, tmp_path / "run", max_steps=2, head_warmup_steps=1, device="auto"))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["finished"] and summary["steps"] == 3 and (encoder / "model.safetensors").is_file()
    assert json.loads((encoder / "pretrain.json").read_text())["config"]["device"] == "auto"
    for bad in ("gpu", "cuda:", None):
        with pytest.raises(InputError) as error:
            _config(tiny, tmp_path / "x", device=bad)
        assert error.value.field == "device"
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no GPU") as error:
            pretrain(_config(tiny, tmp_path / "cuda", device="cuda"))
        assert error.value.field == "device"


def test_cli_keeps_every_config_value_unless_an_option_is_given(tmp_path, monkeypatch):
    """No ``biotag pretrain`` option may replace a config file's value by its own default."""
    from typer.main import get_command
    from typer.testing import CliRunner

    import biotag.pretrain
    from biotag.cli import app

    command = get_command(app).commands["pretrain"]
    assert {p.name for p in command.params if p.default not in (None, False)} == set()  # flags default to off

    seen = []

    def fake_pretrain(cfg, resume=False):
        seen.append(cfg)
        out = tmp_path / "out"
        (out / "encoder").mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps({"perplexity": {"after": 2.0}, "stop_reason": "max_steps", "steps": 1}))
        return out / "encoder"

    monkeypatch.setattr(biotag.pretrain, "pretrain", fake_pretrain)
    settings = {
        "encoder": "mpnet-base", "output_dir": str(tmp_path / "out"), "sources": ["abstracts"], "text_files": ["mine.txt"],
        "max_steps": 7, "max_minutes": 3.0, "head_warmup_steps": 2, "batch_size": 4, "max_length": 64, "lr": 1e-4,
        "extend_vocab": 10, "min_word_count": 3, "eval_sequences": 12, "checkpoint_every": 5, "seed": 4, "threads": 2,
        "device": "auto",
    }
    path = tmp_path / "pretrain.json"
    path.write_text(json.dumps(settings))
    runner = CliRunner()
    result = runner.invoke(app, ["pretrain", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert seen[-1] == PretrainConfig.from_json(path) and seen[-1].device == "auto"
    assert runner.invoke(app, ["pretrain", "--config", str(path), "--device", "cpu", "--no-shared"]).exit_code == 0
    assert (seen[-1].device, seen[-1].sources, seen[-1].text_files) == ("cpu", [], ["mine.txt"])
    result = runner.invoke(app, ["pretrain", "--config", str(path), "--device", "gpu"])
    assert result.exit_code != 0 and "device" in result.output
