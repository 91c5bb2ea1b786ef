"""Text segmentation with character offsets: sentences, words, and both on documents."""

from biotag.text.segment import segment, sentence_words
from biotag.text.sentences import split_sentences
from biotag.text.words import (
    char_span_to_word_span,
    char_spans_to_word_spans,
    word_span_to_char_span,
    word_spans,
    word_spans_to_char_spans,
    words,
)

__all__ = [
    "char_span_to_word_span",
    "char_spans_to_word_spans",
    "segment",
    "sentence_words",
    "split_sentences",
    "word_span_to_char_span",
    "word_spans",
    "word_spans_to_char_spans",
    "words",
]
