"""TokenClassifier: construction, prediction, save/load, Hugging Face compatibility, losses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from biotag.errors import InputError
from biotag.labels import IGNORE, LabelSchema
from biotag.models.token_classifier import TokenClassifier, word_loss
from helpers import make_tiny_encoder, make_tiny_mpnet

SENTENCES = [
    ["The", "BRCA1", "gene", "is", "mutated", "in", "breast", "cancer", "."],
    ["Aspirin"],
    [],
    ["p53", "", "binds", "MDM2", "in", "human", "cells", "."] * 6,  # windowed at max_length 32
]
MULTI = LabelSchema(("gene", "disease"), "multilabel")
BIO = LabelSchema(("gene", "disease"), "bio")


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    return make_tiny_encoder(tmp_path_factory.mktemp("tiny") / "encoder")


@pytest.fixture(scope="module")
def model(tiny_encoder) -> TokenClassifier:
    torch.manual_seed(0)
    return TokenClassifier.from_encoder(tiny_encoder, MULTI, max_length=32)


def test_one_score_vector_per_word_in_input_order(model):
    scores = model.predict_words(SENTENCES, batch_size=2)
    assert [s.shape for s in scores] == [(9, 6), (1, 6), (0, 6), (48, 6)]
    assert all(s.dtype == np.float32 for s in scores)
    alone = [model.predict_words([words])[0] for words in SENTENCES]
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(scores, alone))  # batching changes nothing
    model.train()
    assert np.allclose(model.predict_words(SENTENCES[:1])[0], scores[0], atol=1e-5)  # no dropout at prediction
    assert model.training and model.network.training  # switched to eval mode and back
    model.eval()
    assert not np.allclose(scores[3][:8], scores[3][8:16])  # positions differ, so do outputs


def test_save_and_load_round_trip(model, tmp_path):
    card = {"data": {"toy": {"train_sentences": 3}}, "command": "biotag train -c toy", "metrics": {"devel_f1": 0.5}}
    model.save_pretrained(tmp_path / "m", card=card)
    meta = json.loads((tmp_path / "m" / "biotag.json").read_text())
    assert meta["schema"] == MULTI.to_dict() and meta["max_length"] == 32 and meta["training"] == card
    readme = (tmp_path / "m" / "README.md").read_text()
    assert "biotag train -c toy" in readme and "devel_f1: 0.5" in readme and "gene, disease" in readme
    loaded = TokenClassifier.from_pretrained(tmp_path / "m")
    assert loaded.schema == MULTI and loaded.max_length == 32 and loaded.card == card
    for a, b in zip(model.predict_words(SENTENCES), loaded.predict_words(SENTENCES)):
        assert np.array_equal(a, b)


def test_an_added_type_starts_as_a_copy_of_its_source_and_survives_a_round_trip(tiny_encoder, tmp_path):
    torch.manual_seed(1)
    grown = TokenClassifier.from_encoder(tiny_encoder, MULTI, max_length=32)
    before = grown.predict_words(SENTENCES[:1])[0]
    grown.add_types({"protein": "gene"})
    assert grown.schema == LabelSchema(("gene", "disease", "protein"), "multilabel")
    after = grown.predict_words(SENTENCES[:1])[0]
    assert after.shape == (9, 9) and np.allclose(after[:, :6], before, atol=1e-6)
    assert np.allclose(after[:, 6:9], before[:, 0:3], atol=1e-6)  # protein predicts what gene does
    loaded = TokenClassifier.from_pretrained(grown.save_pretrained(tmp_path / "grown"))
    assert loaded.schema == grown.schema and np.allclose(loaded.predict_words(SENTENCES[:1])[0], after, atol=1e-5)
    for bad in ({"protein": "chemical"}, {"disease": "gene"}):  # an unknown source; a type it has
        with pytest.raises(InputError) as info:
            loaded.add_types(bad)
        assert info.value.field == "added_types"
    with pytest.raises(InputError, match="multilabel"):
        TokenClassifier.from_encoder(tiny_encoder, BIO, max_length=32).add_types({"protein": "gene"})
    with_crf = TokenClassifier.from_encoder(tiny_encoder, MULTI, max_length=32, decoder="crf")
    with torch.no_grad():
        with_crf.crf.transitions.normal_()
    with_crf.add_types({"protein": "disease"})
    transitions = with_crf.crf.transitions.detach()
    assert transitions.shape[0] == 3 and torch.equal(transitions[2], transitions[1])  # protein's chain is disease's


def test_saved_model_loads_with_auto_model_for_token_classification(model, tmp_path):
    from transformers import AutoModelForTokenClassification

    model.save_pretrained(tmp_path / "m")
    hf = AutoModelForTokenClassification.from_pretrained(tmp_path / "m").eval()
    assert [hf.config.id2label[i] for i in range(MULTI.num_outputs)] == MULTI.output_names
    words = SENTENCES[0]
    encoded = model.tokenizer([words], is_split_into_words=True, return_tensors="pt")
    with torch.inference_mode():
        logits = hf(**encoded).logits[0].numpy()
    word_ids = encoded.word_ids(0)
    first = [word_ids.index(i) for i in range(len(words))]
    assert np.allclose(logits[first], model.predict_words([words])[0], atol=1e-5)


def test_mpnet_architecture(tmp_path):
    """Any encoder with a ...ForTokenClassification class works: a tiny random MPNet."""
    make_tiny_mpnet(tmp_path / "enc")
    with pytest.raises(InputError) as info:  # 66 positions minus MPNet's 2 reserved ones
        TokenClassifier.from_encoder(tmp_path / "enc", BIO, max_length=65)
    assert info.value.field == "max_length"
    mpnet = TokenClassifier.from_encoder(tmp_path / "enc", BIO, max_length=64)
    scores = mpnet.predict_words(SENTENCES)
    assert [s.shape[0] for s in scores] == [9, 1, 0, 48] and scores[0].shape[1] == BIO.num_outputs
    mpnet.save_pretrained(tmp_path / "m")
    again = TokenClassifier.from_pretrained(tmp_path / "m").predict_words(SENTENCES)
    assert all(np.array_equal(a, b) for a, b in zip(scores, again))


def test_from_pretrained_rejects_a_plain_encoder(tiny_encoder):
    with pytest.raises(InputError) as info:
        TokenClassifier.from_pretrained(tiny_encoder)
    assert info.value.path == str(tiny_encoder) and "biotag.json" in str(info.value)


# -- losses ------------------------------------------------------------------------------
def test_bio_loss_is_cross_entropy_over_labelled_words():
    scores = torch.randn(5, BIO.num_outputs)
    labels = torch.tensor([0, 1, 2, IGNORE, 3])
    expected = F.cross_entropy(scores[[0, 1, 2, 4]], labels[[0, 1, 2, 4]])
    assert torch.allclose(word_loss(scores, labels, BIO), expected)
    full_mask = torch.ones(5, 2, dtype=torch.bool)
    assert torch.allclose(word_loss(scores, labels, BIO, full_mask), expected)
    nothing = word_loss(scores.requires_grad_(), torch.full((5,), IGNORE), BIO)
    assert nothing.item() == 0.0 and nothing.requires_grad


def test_bio_loss_treats_o_as_partial_where_a_type_is_not_annotated():
    scores = torch.randn(2, BIO.num_outputs)
    labels = torch.tensor([0, 1])  # O, B-gene
    mask = torch.tensor([[True, False], [True, False]])  # this corpus annotates genes only
    probs = scores.softmax(-1)
    # O could hide a disease: O, B-disease and I-disease (outputs 0, 3, 4) are all allowed
    expected = -(torch.log(probs[0, [0, 3, 4]].sum()) + torch.log(probs[1, 1])) / 2
    assert torch.allclose(word_loss(scores, labels, BIO, mask), expected, atol=1e-6)


def test_multilabel_loss_skips_types_the_corpus_does_not_annotate():
    scores = torch.randn(4, MULTI.num_outputs, requires_grad=True)
    labels = torch.tensor([[0, 1], [1, 2], [IGNORE, 0], [2, 0]])
    mask = torch.tensor([[True, False]] * 4)  # disease is not annotated
    loss = word_loss(scores, labels, MULTI, mask)
    gene_scores, gene_labels = scores.view(4, 2, 3)[:, 0], labels[:, 0]
    keep = gene_labels != IGNORE
    assert torch.allclose(loss, F.cross_entropy(gene_scores[keep], gene_labels[keep]))
    loss.backward()
    assert scores.grad.view(4, 2, 3)[:, 1].abs().sum() == 0  # no signal on disease outputs
    assert scores.grad.view(4, 2, 3)[2, 0].abs().sum() == 0  # nor on the ignored word
    unmasked = word_loss(scores, labels, MULTI)
    assert not torch.allclose(unmasked, loss)
