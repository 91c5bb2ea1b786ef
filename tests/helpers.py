"""Test fixtures shared across test files: a tiny random BERT encoder directory (and a
tiny MPNet one with the real MPNet tokenizer).

``make_tiny_encoder(dir)`` writes, in a couple of hundred milliseconds, a Hugging Face
encoder directory (random BERT, 2 layers of width 32, a small *cased* WordPiece vocab and
a fast tokenizer) that loads with ``AutoModel`` / ``AutoTokenizer`` /
``TokenClassifier.from_encoder`` exactly like a real pretrained encoder.
"""

from __future__ import annotations

from pathlib import Path

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# whole words used by the tests' toy sentences, upper- and lower-case, so that the tiny
# (cased) model can see capitalisation
TINY_WORDS = (
    "The the a of and in is was with to by on for at from cell gene protein disease patient "
    "cancer drug dose p53 il brca tumour tumor mouse human blood Aspirin Tumour Gene Cell "
    "Protein Disease Insulin Kinase Mouse Human Blood Cancer Drug BRCA TP53 Alpha Beta "
    "alpha beta"
).split()
PUNCTUATION = list(".,;:()-/+[]%'\"")


def tiny_vocab() -> list[str]:
    """Special tokens, punctuation, single characters (as word starts and ``##``
    continuations, so any ASCII word tokenizes) and a few whole words."""
    chars = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    chars += [c.upper() for c in chars] + [str(d) for d in range(10)]
    vocab = SPECIAL_TOKENS + PUNCTUATION + chars + [f"##{c}" for c in chars] + TINY_WORDS
    return list(dict.fromkeys(vocab))


def make_tiny_encoder(directory: str | Path, *, seed: int = 0, max_positions: int = 128) -> Path:
    """Write a tiny random BERT encoder + fast tokenizer into ``directory``; returns it."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vocab = tiny_vocab()
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab=str(directory / "vocab.txt"), do_lower_case=False, model_max_length=max_positions)
    tokenizer.save_pretrained(directory)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        pad_token_id=0,
        initializer_range=0.1,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(directory)
    return directory


def make_tiny_mpnet(directory: str | Path, *, max_positions: int = 66) -> Path:
    """A tiny random MPNet (relative attention bias, no token types, 2 reserved positions)
    with mpnet-base's real tokenizer; skips the test when that tokenizer is not installed."""
    import pytest
    from transformers import AutoTokenizer, MPNetConfig, MPNetModel

    from biotag.paths import encoders_root

    source = encoders_root() / "mpnet-base"
    if not (source / "tokenizer.json").is_file():
        pytest.skip(f"mpnet-base tokenizer not found under {encoders_root()}")
    directory = Path(directory)
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = MPNetConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    MPNetModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


CAPITALISED = ["Aspirin", "Insulin", "Kinase", "Alpha", "Beta", "BRCA", "TP53", "Mouse", "Human", "Blood"]
LOWER = ["a", "of", "and", "in", "is", "was", "with", "to", "by", "cell", "gene", "protein", "dose", "mouse", "blood"]


def toy_document(doc_id: str, rng, n_sentences: int = 3, entity_type: str = "Thing"):
    """A document whose entities follow one contextual rule: a capitalised word right
    after "the" is an entity; capitalised words elsewhere are not. Sentences and tokens
    layers are filled, as a CoNLL reader would."""
    from biotag.document import Document, Span

    words: list[tuple[str, bool]] = []  # (word, is entity)
    sentence_bounds = []
    for _ in range(n_sentences):
        start = len(words)
        for _ in range(int(rng.integers(3, 7))):
            roll = rng.random()
            if roll < 0.3:
                words += [("the", False), (str(rng.choice(CAPITALISED)), True)]
            elif roll < 0.4:
                words.append((str(rng.choice(CAPITALISED)), False))
            elif roll < 0.6:
                words += [("the", False), (str(rng.choice(LOWER)), False)]
            else:
                words.append((str(rng.choice(LOWER)), False))
        words.append((".", False))
        sentence_bounds.append((start, len(words)))
    offsets, pos = [], 0
    for w, _ in words:
        offsets.append((pos, pos + len(w)))
        pos += len(w) + 1
    doc = Document(id=doc_id, text=" ".join(w for w, _ in words))
    doc.tokens = [Span(a, b) for a, b in offsets]
    doc.sentences = [Span(offsets[s][0], offsets[e - 1][1]) for s, e in sentence_bounds]
    for (w, is_entity), (a, b) in zip(words, offsets):
        if is_entity:
            doc.add_entity(a, b, entity_type)
    return doc


def write_toy_corpus(
    folder: str | Path, *, n_train: int = 40, n_devel: int = 10, seed: int = 0, entity_type: str = "Thing"
) -> Path:
    """A corpus folder (``train.jsonl``, ``devel.jsonl``) of :func:`toy_document`s."""
    import numpy as np

    from biotag.io import jsonl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("devel", n_devel)):
        docs = [toy_document(f"{split}{i}", rng, entity_type=entity_type) for i in range(n)]
        jsonl.write(docs, folder / f"{split}.jsonl")
    return folder


def mutate(draw, data: bytes, pieces: list[bytes], look_back: int = 20) -> bytes:
    """A hypothesis-drawn corruption of ``data``: a few insertions of ``pieces``, deletions,
    duplications of the preceding ``look_back`` bytes, and a cut."""
    from hypothesis import strategies as st

    out = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(out)))
        action = draw(st.sampled_from(["insert", "delete", "duplicate", "truncate"]))
        if action == "insert":
            out[position:position] = draw(st.sampled_from(pieces))
        elif action == "delete":
            del out[position : position + draw(st.integers(1, 8))]
        elif action == "duplicate":
            out[position:position] = out[max(0, position - look_back) : position]
        elif draw(st.booleans()):  # truncate, half as often as the others
            del out[position:]
    return bytes(out)


def perturbed_copy(model_dir: str | Path, target: str | Path, seed: int) -> Path:
    """A copy of the NER model in ``model_dir`` whose classifier got seeded random noise: a
    second model that disagrees with the first, for ensembles."""
    import torch

    from biotag.models.token_classifier import TokenClassifier

    model = TokenClassifier.from_pretrained(model_dir)
    with torch.no_grad():
        weight = model.network.classifier.weight
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(seed)))
    return model.save_pretrained(target)
