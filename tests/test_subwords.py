"""Sub-word alignment and windowing (biotag.text.subwords)."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from biotag.errors import InputError
from biotag.paths import encoders_root
from biotag.text.subwords import SubwordEncoder, scatter_words
from helpers import make_tiny_encoder

WORDS = ["The", "IL-2", "receptor", "alpha", "chain", "(", "CD25", ")", "binds", "interleukin-2", "in",
         "T-cells", ";", "BRCA1", "mutations", "cause", "hereditary", "breast", "cancer", "."]  # fmt: skip
NO_SUBWORD = ["", "\u200b", "\x00"]  # empty, zero-width space, control character


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(make_tiny_encoder(tmp_path_factory.mktemp("tiny")))


def pretrained_tokenizer(name: str):
    from transformers import AutoTokenizer

    folder = encoders_root() / name
    if not (folder / "tokenizer.json").is_file():
        pytest.skip(f"encoder {name} not found under {encoders_root()}")
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module", params=["tiny", "minilm-l6", "mpnet-base"])
def tokenizer(request, tiny_tokenizer):
    return tiny_tokenizer if request.param == "tiny" else pretrained_tokenizer(request.param)


def first_piece(tokenizer, word: str) -> int:
    ids = tokenizer([[word]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0]
    return ids[0] if ids else tokenizer.unk_token_id


def check_windows(encoder: SubwordEncoder, word_lists, encoding) -> None:
    """Invariants of any encoding: windows fit, carry the special tokens, own every word
    exactly once, and point each owned word at its own first sub-word."""
    owned = [np.zeros(n, dtype=int) for n in encoding.n_words]
    prefix, suffix = encoder.prefix, encoder.suffix
    for w in encoding.windows:
        assert len(w) <= encoder.max_length
        assert w.input_ids[: len(prefix)].tolist() == prefix
        assert w.input_ids[len(w) - len(suffix) :].tolist() == suffix
        owned[w.sequence][w.words] += 1
        for word, pos in zip(w.words, w.positions):
            assert w.input_ids[pos] == first_piece(encoder.tokenizer, word_lists[w.sequence][word])
    assert all((o == 1).all() for o in owned)


def test_first_subword_of_each_word(tokenizer):
    encoder = SubwordEncoder(tokenizer, max_length=128)
    word_lists = [WORDS, ["cancer"], [], WORDS[::-1]]
    encoding = encoder.encode(word_lists)
    assert encoding.n_words == [20, 1, 0, 20]
    assert [w.sequence for w in encoding.windows] == [0, 1, 3]  # no window for an empty list
    check_windows(encoder, word_lists, encoding)
    first = encoding.windows[0]
    assert first.positions[0] == len(encoder.prefix) and (np.diff(first.positions) > 0).all()
    # "interleukin-2" is several sub-words: the next word starts after all of them
    k = WORDS.index("interleukin-2")
    n_pieces = len(tokenizer([["interleukin-2"]], is_split_into_words=True, add_special_tokens=False)["input_ids"][0])
    assert n_pieces > 1 and first.positions[k + 1] - first.positions[k] == n_pieces


def test_words_without_subwords_are_encoded_as_unk(tokenizer):
    encoder = SubwordEncoder(tokenizer, max_length=64)
    words = ["gene", *NO_SUBWORD, "cancer"]
    encoding = encoder.encode([words])
    (window,) = encoding.windows
    assert encoding.unknown_words == 3
    assert window.input_ids[window.positions[1:4]].tolist() == [tokenizer.unk_token_id] * 3
    assert np.diff(window.positions).tolist() == [1, 1, 1, 1]  # one [UNK] each, in order
    check_windows(encoder, [words], encoding)


def test_long_sequences_are_windowed_with_overlap(tokenizer):
    words = WORDS * 6  # 120 words
    encoder = SubwordEncoder(tokenizer, max_length=24, stride=6)
    encoding = encoder.encode([words])
    assert len(encoding.windows) > 4
    check_windows(encoder, [words], encoding)
    again = encoder.encode([words])
    assert all(np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.words, b.words)
               for a, b in zip(encoding.windows, again.windows))  # fmt: skip
    # consecutive windows share a tail/head of at most `stride` sub-words
    bodies = [w.input_ids[len(encoder.prefix) : len(w) - len(encoder.suffix)].tolist() for w in encoding.windows]
    for left, right in zip(bodies, bodies[1:]):
        overlap = max(k for k in range(0, min(len(left), len(right)) + 1) if k == 0 or left[-k:] == right[:k])
        assert overlap <= encoder.stride


def test_owner_is_the_window_farthest_from_a_cut(tiny_tokenizer):
    words = ["gene"] * 10  # one sub-word each: sub-word and word offsets coincide
    encoder = SubwordEncoder(tiny_tokenizer, max_length=8, stride=4)  # 6 words per window
    windows = encoder.encode([words]).windows
    # windows hold words [0, 6), [2, 8) and [4, 10); a word's margin is its distance to
    # the nearest cut (a real sequence end is no cut). Word 3: margin 2 in window 0,
    # 1 in window 1 -> window 0; word 5: 0 / 2 / 1 -> window 1; word 6: 1 / 2 -> window 2
    assert [len(w) for w in windows] == [8, 8, 8]
    assert [w.words.tolist() for w in windows] == [[0, 1, 2, 3], [4, 5], [6, 7, 8, 9]]
    assert [w.positions.tolist() for w in windows] == [[1, 2, 3, 4], [3, 4], [3, 4, 5, 6]]


def test_batch_collation_and_scatter_restore_input_order(tiny_tokenizer):
    encoder = SubwordEncoder(tiny_tokenizer, max_length=10, stride=2)
    word_lists = [WORDS[:3], WORDS, [], WORDS[5:7]]
    encoding = encoder.encode(word_lists)
    batch = encoder.collate(encoding.windows)
    assert batch.input_ids.shape == (len(encoding.windows), max(len(w) for w in encoding.windows))
    assert batch.attention_mask.sum() == sum(len(w) for w in encoding.windows) == batch.n_tokens
    assert (batch.input_ids[batch.attention_mask == 0] == tiny_tokenizer.pad_token_id).all()
    # the id at each word's position, scattered back, is the word's own first piece
    ids = batch.input_ids[batch.word_rows, batch.word_positions].astype(np.float32)
    sizes = np.cumsum([len(w.words) for w in encoding.windows])[:-1]
    merged = scatter_words(encoding.windows, [r[:, None] for r in np.split(ids, sizes)], encoding.n_words, 1)
    assert [m[:, 0].tolist() for m in merged] == [
        [first_piece(tiny_tokenizer, w) for w in words] for words in word_lists
    ]


def test_bad_settings_raise(tiny_tokenizer):
    with pytest.raises(InputError) as info:
        SubwordEncoder(tiny_tokenizer, max_length=2)
    assert info.value.field == "max_length"
    with pytest.raises(InputError):
        SubwordEncoder(tiny_tokenizer, max_length=16, stride=14)

    class SlowTokenizer:
        is_fast = False

    with pytest.raises(InputError) as info:
        SubwordEncoder(SlowTokenizer())
    assert "fast tokenizer" in str(info.value)


@settings(max_examples=40, deadline=None)
@given(
    word_lists=st.lists(
        st.lists(st.sampled_from(WORDS + NO_SUBWORD + ["supercalifragilistic", "x" * 40]), max_size=40), max_size=4
    ),
    max_length=st.integers(4, 40),
    stride_fraction=st.floats(0, 0.9),
)
def test_windowing_invariants_hold_for_any_input(tiny_tokenizer, word_lists, max_length, stride_fraction):
    budget = max_length - 2
    encoder = SubwordEncoder(tiny_tokenizer, max_length=max_length, stride=int(stride_fraction * budget))
    check_windows(encoder, word_lists, encoder.encode(word_lists))
